"""Keyframe interpolation, as ltx-pipelines 1.0.0 runs it (keyframe_interpolation.py): the two stages of
two_stage.py, with every image an appended guiding keyframe in both stages, frame 0 included
(image_conditionings_by_adding_guiding_latent; frame 0 keeps the causal first-frame position), instead
of frame 0 replacing the first latent frame."""

from __future__ import annotations

from ditto.errors import InvalidParameter
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Checkpoint
from ditto.pipelines.ltx2.conditioning.image import KeyframeImage
from ditto.pipelines.ltx2.conditioning.image_input import image_conditions
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes import two_stage
from ditto.pipelines.ltx2.recipes.base import Recipe
from ditto.result import Result


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    two_stage.check(raw, params, checkpoint)
    if len(image_conditions(params.image, params.num_frames)) < 2:
        raise InvalidParameter(
            "image", params.image, "needs at least two keyframes to interpolate between",
            'give e.g. image=["first.png:0", "last.png:120"]',
        )  # fmt: skip


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    first = steps.half_size(params, steps.request_generator(kit.components, params))
    items = steps.Items(video=[KeyframeImage(image) for image in params.image])
    plan = two_stage.StagePlan(items_stage_1=items, items_stage_2=items)
    return two_stage.run_stages(kit, params, first, progress, plan)


RECIPE = Recipe("keyframe-interpolation", run, check)
