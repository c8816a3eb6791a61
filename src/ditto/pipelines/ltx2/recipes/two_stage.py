"""Two stages, as ltx-pipelines 1.0.0 runs them (ti2vid_two_stages.py): stage 1 at half width and height with
the multimodal guider and the official schedule; the video latent through the x2 latent upsampler; stage 2
at full size with the distilled LoRA, after fresh noise from the same generator is mixed into the video
and the stage-1 audio at the first of the 3 fixed stage-2 sigmas, without guidance.

`run_stages` is the shape every two-stage variant shares (distilled, HQ, keyframe interpolation, IC-LoRA,
audio-to-video); a `StagePlan` says what differs: the sampler, the distilled LoRA's strength per stage,
each stage's conditioning items, stage 1's sigmas and an IC-LoRA."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ditto.errors import InvalidParameter
from ditto.media.audio import DecodedAudio
from ditto.pipelines.base import ProgressCallback, StageTimer
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import DISTILLED_LORA_DIR, LTX2Checkpoint
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes.base import Recipe, check_upsampled
from ditto.result import Result
from ditto.runtime.progress import Progress


@dataclass(frozen=True)
class StagePlan:
    sampler: str = "euler"
    lora_stage_1: float | None = None  # the distilled LoRA's strength in stage 1; None: off
    lora_stage_2: float | None = 1.0
    items_stage_1: steps.Items | None = None  # None: the request's images (steps.Items())
    items_stage_2: steps.Items | None = None
    sigmas_stage_1: torch.Tensor | None = None  # None: the request's sigmas or the official schedule
    ic_lora: float | None = None  # the IC-LoRA's strength in stage 1 (ic-lora); None: none
    positive_audio_text: bool = False  # stage 1's unconditional pass keeps the positive audio text (a2vid)
    sound: DecodedAudio | None = None  # the output's sound instead of the decoded audio (a2vid)


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    check_upsampled(params, checkpoint)
    check_distilled_lora(params, checkpoint)


def check_distilled_lora(params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    if checkpoint.distilled_lora is None:
        raise InvalidParameter(
            "pipeline",
            params.pipeline,
            f"needs the distilled LoRA for stage 2 ({DISTILLED_LORA_DIR}/*.safetensors or distilled_lora=)",
            'use pipeline="distilled" with a distilled checkpoint',
        )


def stage_one_params(params: LTX2Params, generator: torch.Generator | None) -> LTX2Params:
    return steps.half_size(params, generator)


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    first = stage_one_params(params, steps.request_generator(kit.components, params))
    return run_stages(kit, params, first, progress, StagePlan())


def run_stages(
    kit: steps.Toolkit,
    params: LTX2Params,
    first: LTX2Params,
    progress: ProgressCallback | None,
    plan: StagePlan,
) -> Result:
    """Stage 1 as `first` asks (its generator is the request's), upsampling, stage 2 at `params`' size."""
    components, generator = kit.components, first.generator
    timer = StageTimer(components.device, components.residency)
    timer.begin(params)
    with timer.stage("encode_text"):
        prompts = steps.encode_prompts(components, first)
    if plan.positive_audio_text:
        prompts = steps.positive_audio_text(prompts)
    if plan.ic_lora is not None:
        kit.ic_lora.side_factors(plan.ic_lora)  # prepared while the targets are plain Linears
    # A LoRA at the same strength in both stages stays on across them (no detach and attach in between).
    kept = plan.lora_stage_1 if plan.lora_stage_1 == plan.lora_stage_2 else None
    with _lora(kit, kept):
        with _lora(kit, None if kept else plan.lora_stage_1), _ic_lora(kit, plan.ic_lora):
            with timer.stage("denoise_stage_1"):
                inputs = steps.prepare(
                    components, first, prompts, generator, plan.items_stage_1, plan.sigmas_stage_1
                )
                counter = Progress(inputs.num_steps + len(steps.STAGE_2_SIGMAS) - 1, progress)
                video, audio = steps.denoise(kit, inputs, counter, "denoise_stage_1", plan.sampler)
        with timer.stage("upsample"):
            video = steps.upsample(components, video, inputs.shape)
        with _lora(kit, None if kept else plan.lora_stage_2), timer.stage("denoise_stage_2"):
            second = steps.stage_two_inputs(
                components, params, inputs, video, audio, generator, plan.items_stage_2
            )
            video, audio = steps.denoise(kit, second, counter, "denoise_stage_2", plan.sampler)
    return steps.finish(components, params, second.shape, video, audio, timer, plan.sound)


def _lora(kit: steps.Toolkit, strength: float | None):
    return kit.distilled.applied(strength is not None, strength if strength is not None else 1.0)


def _ic_lora(kit: steps.Toolkit, strength: float | None):
    if strength is None:
        return kit.distilled.applied(False)
    return kit.ic_lora.applied(True, strength)


RECIPE = Recipe("two-stage", run, check)
