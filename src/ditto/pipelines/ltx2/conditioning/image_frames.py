"""`image_frames=`: the frame of each `image=` item, given apart from the images, for the surfaces where an
image cannot carry its frame: the server's `input_reference_frames` ("0,120", one per uploaded file), the
CLI's `--image-frames 0,120` (or `--image PATH:FRAME`), Python's `image_frames=[0, 120]`. It pairs the k-th
image with the k-th frame, as `(image, frame)` conditionings (image_input.py), once `num_frames` is known.
Every error names `image_frames`, its value and what would be valid."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from ditto.errors import InvalidParameter
from ditto.pipelines.ltx2.conditioning.image_input import carries_frame
from ditto.pipelines.ltx2.params import LTX2Params

FIELD = "image_frames"
_INDICES = re.compile(r"\s*\d+\s*(,\s*\d+\s*)*")
_HINT = "give one frame index per image, in order, e.g. '0,120'"


def parse_frames(value: Any) -> list[int]:
    """'0,120' or [0, 120] -> [0, 120]; anything else is an InvalidParameter naming image_frames."""
    if isinstance(value, str) and _INDICES.fullmatch(value):
        return [int(part) for part in value.split(",")]
    if isinstance(value, (list, tuple)) and value and all(_is_index(frame) for frame in value):
        return [int(frame) for frame in value]
    raise InvalidParameter(FIELD, value, "is not a list of frame indices", _HINT)


def _is_index(frame: Any) -> bool:
    return isinstance(frame, (int, np.integer)) and not isinstance(frame, bool) and frame >= 0


def with_image_frames(params: LTX2Params) -> LTX2Params:
    """`image` as (image, frame) pairs when `image_frames` is given (its value kept as "0,120", so the
    request record can repeat it); the request unchanged otherwise."""
    if params.image_frames is None:
        return params
    frames = parse_frames(params.image_frames)
    images = _images(params.image)
    given = params.image_frames
    if len(frames) != len(images):
        problem = f"names {_count(frames, 'frame')} for {_count(images, 'image')}"
        hint = f"give {len(images)} frame indices, one per image" if images else "give one image per frame"
        raise InvalidParameter(FIELD, given, problem, hint)
    _check_range(given, frames, params.num_frames)
    if any(carries_frame(image) for image in images):
        raise InvalidParameter(
            FIELD, given, "is given for images that carry their own frame (PATH:FRAME or (image, frame))",
            "give plain images with image_frames, or leave image_frames out",
        )  # fmt: skip
    paired = [(image, frame) for image, frame in zip(images, frames)]
    return dataclasses.replace(params, image=paired, image_frames=",".join(map(str, frames)))


def _check_range(given: Any, frames: list[int], num_frames: int) -> None:
    last = num_frames - 1
    for frame in frames:
        if frame > last:
            raise InvalidParameter(
                FIELD, given, f"has frame {frame}, outside the video (0..{last} for num_frames={num_frames})",
                f"use frames in 0..{last}",
            )  # fmt: skip
    if frames.count(0) > 1:
        raise InvalidParameter(FIELD, given, "gives frame 0 more than once", "one image per frame 0")


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _images(image: Any) -> list[Any]:
    if image is None:
        return []
    return list(image) if isinstance(image, list) else [image]
