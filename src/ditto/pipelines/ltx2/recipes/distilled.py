"""The distilled pipeline, as ltx-pipelines 1.0.0 runs it (distilled.py): the two stages of two_stage.py with
the 8 fixed distilled sigmas in stage 1 and no guidance anywhere, on the distilled weights in both stages
(the distilled LoRA applied, when the checkpoint is not itself distilled)."""

from __future__ import annotations

import torch

from ditto.errors import InvalidParameter
from ditto.pipelines.base import ProgressCallback, StageTimer
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Components
from ditto.pipelines.ltx2.params import NO_GUIDANCE, LTX2Params
from ditto.pipelines.ltx2.recipes.base import Recipe, check_upsampled
from ditto.result import Result
from ditto.runtime.progress import Progress

# ltx_pipelines/utils/constants.py (1.0.0): DISTILLED_SIGMA_VALUES.
DISTILLED_SIGMAS = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0]


def check(raw: LTX2Params, params: LTX2Params, components: LTX2Components) -> None:
    check_upsampled(params, components)
    for name in ("num_inference_steps", "sigmas"):
        if getattr(raw, name) is not None:
            raise InvalidParameter(
                name, getattr(raw, name), "is fixed by the distilled pipeline (8 + 3 sigmas)"
            )


def stage_one_params(params: LTX2Params, generator: torch.Generator | None) -> LTX2Params:
    return steps.half_size(params, generator, sigmas=DISTILLED_SIGMAS, **NO_GUIDANCE)


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    components = kit.components
    timer = StageTimer(components.device)
    generator = steps.request_generator(components, params)
    first = stage_one_params(params, generator)
    with timer.stage("text encoding"):
        prompts = steps.encode_prompts(components, first)
    with kit.distilled.applied():
        with timer.stage("stage 1"):
            inputs = steps.prepare(components, first, prompts, generator)
            counter = Progress(inputs.num_steps + len(steps.STAGE_2_SIGMAS) - 1, progress)
            video, audio = steps.denoise(kit, inputs, counter, "stage 1")
        with timer.stage("upsampling"):
            video = steps.upsample(components, video, inputs.shape)
        with timer.stage("stage 2"):
            second = steps.stage_two_inputs(components, params, inputs, video, audio, generator)
            video, audio = steps.denoise(kit, second, counter, "stage 2")
    return steps.finish(components, params, second.shape, video, audio, timer)


RECIPE = Recipe("distilled", run, check)
