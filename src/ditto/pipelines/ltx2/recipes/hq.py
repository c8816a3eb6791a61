"""HQ, as ltx-pipelines 1.0.0 runs it (ti2vid_two_stages_hq.py): the two stages of two_stage.py with the res2s
sampler in both, the distilled LoRA at strength 0.25 in stage 1 and 0.5 in stage 2, and stage 1's
schedule shifted for its real token count (LTX2Scheduler given the stage-1 latent, not the 4096-token
default). Defaults (params.PIPELINE_DEFAULTS["hq"]): 1088 x 1920, 15 steps, CFG 3 / audio 7, no STG,
rescale 0.45 / audio 1.0."""

from __future__ import annotations

from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Checkpoint
from ditto.pipelines.ltx2.latents import latent_shape
from ditto.pipelines.ltx2.params import HQ_LORA_STRENGTHS, LTX2Params
from ditto.pipelines.ltx2.recipes import two_stage
from ditto.pipelines.ltx2.recipes.base import Recipe, check_upsampled
from ditto.result import Result
from ditto.sampling.schedules import explicit_sigmas, ltx2_sigmas


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    check_upsampled(params, checkpoint, euler_only=False)  # HQ samples with res2s whatever `sampler` says
    two_stage.check_distilled_lora(params, checkpoint)


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    first = steps.half_size(params, steps.request_generator(kit.components, params))
    if first.sigmas is not None:
        sigmas = explicit_sigmas(first.sigmas)
    else:
        sigmas = ltx2_sigmas(
            first.num_inference_steps, tokens=latent_shape(kit.components, first).video_tokens
        )
    plan = two_stage.StagePlan(
        sampler="res2s",
        lora_stage_1=HQ_LORA_STRENGTHS[0],
        lora_stage_2=HQ_LORA_STRENGTHS[1],
        sigmas_stage_1=sigmas,
    )
    return two_stage.run_stages(kit, params, first, progress, plan)


RECIPE = Recipe("hq", run, check)
