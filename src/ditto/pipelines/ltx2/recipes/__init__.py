"""LTX-2's pipeline variants, one file each: a `Recipe` (its checks and its run, composed from steps.py).
A new variant is one more file here and one more line below."""

from ditto.pipelines.ltx2.recipes import (
    audio_to_video,
    distilled,
    hq,
    ic_lora,
    keyframe_interpolation,
    one_stage,
    retake,
    two_stage,
)
from ditto.pipelines.ltx2.recipes.base import Recipe

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        one_stage.RECIPE,
        two_stage.RECIPE,
        distilled.RECIPE,
        hq.RECIPE,
        keyframe_interpolation.RECIPE,
        ic_lora.RECIPE,
        retake.RECIPE,
        audio_to_video.RECIPE,
    )
}

__all__ = ["RECIPES", "Recipe"]
