"""The distilled pipeline, as ltx-pipelines 1.0.0 runs it (distilled.py): the two stages of two_stage.py with
the 8 fixed distilled sigmas in stage 1 and no guidance anywhere, on the distilled weights in both stages
(the distilled LoRA applied, when the checkpoint is not itself distilled)."""

from __future__ import annotations

import torch

from ditto.errors import InvalidParameter
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Checkpoint
from ditto.pipelines.ltx2.params import NO_GUIDANCE, LTX2Params
from ditto.pipelines.ltx2.recipes import two_stage
from ditto.pipelines.ltx2.recipes.base import Recipe, check_upsampled
from ditto.result import Result

# ltx_pipelines/utils/constants.py (1.0.0): DISTILLED_SIGMA_VALUES.
DISTILLED_SIGMAS = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0]
# Both stages on the distilled weights.
DISTILLED_PLAN = two_stage.StagePlan(lora_stage_1=1.0, lora_stage_2=1.0)


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    check_upsampled(params, checkpoint)
    check_fixed_sigmas(raw)
    check_no_guidance(raw)


def check_no_guidance(raw: LTX2Params) -> None:
    """The distilled pipeline runs no guidance pass: a guidance value or negative prompt a client sends would
    be ignored, so it is an error (the value that turns the term off is accepted)."""
    unused = "is not used by the distilled pipeline (it runs without guidance)"
    for name, off in NO_GUIDANCE.items():
        value = getattr(raw, name)
        if value is not None and value != off:
            raise InvalidParameter(name, value, unused, f"leave it unset (or {off})")
    if raw.negative_prompt:
        raise InvalidParameter("negative_prompt", raw.negative_prompt, unused, "leave it unset")


def check_fixed_sigmas(raw: LTX2Params) -> None:
    for name in ("num_inference_steps", "sigmas"):
        if getattr(raw, name) is not None:
            raise InvalidParameter(
                name, getattr(raw, name), "is fixed by the distilled pipeline (8 + 3 sigmas)"
            )


def stage_one_params(params: LTX2Params, generator: torch.Generator | None) -> LTX2Params:
    return steps.half_size(params, generator, sigmas=DISTILLED_SIGMAS, **NO_GUIDANCE)


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    first = stage_one_params(params, steps.request_generator(kit.components, params))
    return two_stage.run_stages(kit, params, first, progress, DISTILLED_PLAN)


RECIPE = Recipe("distilled", run, check)
