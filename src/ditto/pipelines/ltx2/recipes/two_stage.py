"""Two stages, as ltx-pipelines 1.0.0 runs them (ti2vid_two_stages.py): stage 1 at half width and height with
the multimodal guider and the official schedule; the video latent through the x2 latent upsampler; stage 2
at full size with the distilled LoRA, after fresh noise from the same generator is mixed into the video
and the stage-1 audio at the first of the 3 fixed stage-2 sigmas, without guidance."""

from __future__ import annotations

import torch

from ditto.errors import InvalidParameter
from ditto.pipelines.base import ProgressCallback, StageTimer
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import DISTILLED_LORA_DIR, LTX2Checkpoint
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes.base import Recipe, check_upsampled
from ditto.result import Result
from ditto.runtime.progress import Progress


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    check_upsampled(params, checkpoint)
    if checkpoint.distilled_lora is None:
        raise InvalidParameter(
            "pipeline",
            "two-stage",
            f"needs the distilled LoRA for stage 2 ({DISTILLED_LORA_DIR}/*.safetensors or distilled_lora=)",
            'use pipeline="distilled" with a distilled checkpoint',
        )


def stage_one_params(params: LTX2Params, generator: torch.Generator | None) -> LTX2Params:
    return steps.half_size(params, generator)


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    first = stage_one_params(params, steps.request_generator(kit.components, params))
    return run_stages(kit, params, first, progress, distilled_stage_one=False)


def run_stages(
    kit: steps.Toolkit,
    params: LTX2Params,
    first: LTX2Params,
    progress: ProgressCallback | None,
    distilled_stage_one: bool,
) -> Result:
    """Stage 1 as `first` asks (its generator is the request's), upsampling, stage 2 at `params`' size; the
    distilled LoRA on in stage 2 and, with `distilled_stage_one`, in stage 1 too."""
    components, generator = kit.components, first.generator
    timer = StageTimer(components.device, components.residency)
    timer.begin(params)
    with timer.stage("encode_text"):
        prompts = steps.encode_prompts(components, first)
    with kit.distilled.applied(distilled_stage_one):
        with timer.stage("denoise_stage_1"):
            inputs = steps.prepare(components, first, prompts, generator)
            counter = Progress(inputs.num_steps + len(steps.STAGE_2_SIGMAS) - 1, progress)
            video, audio = steps.denoise(kit, inputs, counter, "denoise_stage_1")
        with timer.stage("upsample"):
            video = steps.upsample(components, video, inputs.shape)
        with kit.distilled.applied(not distilled_stage_one), timer.stage("denoise_stage_2"):
            second = steps.stage_two_inputs(components, params, inputs, video, audio, generator)
            video, audio = steps.denoise(kit, second, counter, "denoise_stage_2")
    return steps.finish(components, params, second.shape, video, audio, timer)


RECIPE = Recipe("two-stage", run, check)
