"""IC-LoRA, as ltx-pipelines 1.0.0 runs it (ic_lora.py): the distilled two stages (8 fixed sigmas, then the 3
stage-2 ones, no guidance, distilled weights in both), with the IC-LoRA on in stage 1 only and the
reference video (depth, pose, edges...) appended to stage 1's tokens after the images
(VideoConditionByReferenceLatent). The reference is read at the stage-1 size divided by the IC-LoRA's
`reference_downscale_factor` (its file's metadata) and its positions scaled back by it; stage 2 sees
only the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ditto.errors import InvalidParameter
from ditto.media.video import decode_video
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Checkpoint
from ditto.pipelines.ltx2.conditioning.image import image_items
from ditto.pipelines.ltx2.conditioning.video import ReferenceVideo
from ditto.pipelines.ltx2.lora import reference_downscale_factor
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes import distilled, two_stage
from ditto.pipelines.ltx2.recipes.base import Recipe, check_upsampled
from ditto.request import check_multiple
from ditto.result import Result


def downscale(params: LTX2Params, ic_lora: Path | None) -> int:
    if params.reference_downscale_factor is not None:
        return params.reference_downscale_factor
    return reference_downscale_factor(ic_lora)


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    check_upsampled(params, checkpoint)
    distilled.check_fixed_sigmas(raw)
    if checkpoint.ic_lora is None:
        raise InvalidParameter(
            "pipeline", "ic-lora", "needs an IC-LoRA", "load one: ic_lora=PATH[:SCALE] (--ic-lora PATH)"
        )
    if params.reference_video is None:
        raise InvalidParameter(
            "reference_video", None, "is required by pipeline='ic-lora'", "give the control video (MP4)"
        )
    factor = downscale(params, checkpoint.ic_lora)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise InvalidParameter("reference_downscale_factor", factor, "must be an integer >= 1", "1")
    # Stage 1 is half the size, and the reference a further 1/factor of it, on the 32-pixel latent grid.
    check_multiple("height", params.height, 64 * factor)
    check_multiple("width", params.width, 64 * factor)
    reference_frames(params)


def reference_frames(params: LTX2Params) -> np.ndarray:
    """The reference's RGB frames, at most num_frames of them (load_video_conditioning's frame_cap), which
    must be 8k + 1 (the official encoder would drop the rest silently)."""
    source = params.reference_video
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3 or source.dtype != np.uint8:
            raise InvalidParameter("reference_video", f"array {source.shape} {source.dtype}",
                                   "is not RGB uint8 frames [F, H, W, 3]", "give an MP4 path or such frames")  # fmt: skip
        frames = source[: params.num_frames]
    else:
        frames = decode_video(source, "reference_video", params.num_frames).frames
    if (len(frames) - 1) % 8:
        usable = (len(frames) - 1) // 8 * 8 + 1
        raise InvalidParameter(
            "reference_video", f"{len(frames)} frames", "is not 8k + 1 frames (nor num_frames or more)",
            f"trim it to {usable} frames, or give at least num_frames={params.num_frames}",
        )  # fmt: skip
    return frames


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    first = distilled.stage_one_params(params, steps.request_generator(kit.components, params))
    reference = ReferenceVideo(
        reference_frames(params), params.reference_strength, downscale(params, kit.components.ic_lora)
    )
    stage_one = steps.Items(video=[*image_items(params.image or []), reference])
    plan = two_stage.StagePlan(
        lora_stage_1=1.0, lora_stage_2=1.0, items_stage_1=stage_one, ic_lora=kit.components.ic_lora_scale
    )
    return two_stage.run_stages(kit, params, first, progress, plan)


RECIPE = Recipe("ic-lora", run, check)
