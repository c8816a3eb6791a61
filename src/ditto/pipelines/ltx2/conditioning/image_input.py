"""LTX-2 conditioning images: what `image=` may be, its validation, and the official pixel preprocessing.

Accepted forms (docs/parity.md, "Image-to-video and keyframes"):
* one image (PIL image, path, or numpy array H x W [x 3|4], uint8 or float in [0, 1]): the first frame,
  as diffusers' LTX2ImageToVideoPipeline conditions it;
* a list of conditionings, each an image (frame 0), an `(image, frame_index)` or
  `(image, frame_index, strength)` tuple, or a string "PATH:FRAME" (the CLI's `--image PATH:FRAME`) —
  the official ti2vid pipelines' `images=[(path, frame_idx, strength), ...]`.

Pixels are prepared as ltx_pipelines.utils.media_io.load_image_conditioning does: RGB uint8, one-frame
H.264 re-compression at `image_crf` (the model was trained on compressed frames; 0 skips it), then an
aspect-preserving bilinear resize that fills height x width and a centre crop, scaled to [-1, 1].
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ditto.errors import InvalidParameter
from ditto.media.image import load_image
from ditto.media.pixels import to_uint8

# ltx_pipelines/utils/constants.py (1.0.0) DEFAULT_IMAGE_CRF; diffusers' LTX2ImageToVideoPipeline uses it too.
DEFAULT_IMAGE_CRF = 33
_FRAME_SUFFIX = re.compile(r"^(?P<path>.+):(?P<frame>-?\d+)$")
_TYPE_HINT = "give a PIL image, a file path, a H x W x 3 numpy array, or (image, frame_index[, strength])"


@dataclass(frozen=True)
class ImageCondition:
    """One conditioning image, decoded to RGB uint8 [H, W, 3], at a pixel frame index."""

    pixels: np.ndarray
    frame_index: int = 0
    strength: float = 1.0


def image_conditions(image: Any, num_frames: int) -> list[ImageCondition]:
    """Validate `image=` into conditionings sorted as given; an empty result means text-to-video."""
    if image is None:
        return []
    items = image if isinstance(image, list) else [image]
    conditions = [_one(item, num_frames) for item in items]
    firsts = [c for c in conditions if c.frame_index == 0]
    if len(firsts) > 1:
        raise InvalidParameter(
            "image",
            f"{len(firsts)} images at frame 0",
            "gives frame 0 more than once",
            "one image per frame (a list is keyframes of one video, not a batch of first frames)",
        )
    return conditions


def carries_frame(item: Any) -> bool:
    """Whether a conditioning names its own frame: a tuple, an ImageCondition or a "PATH:FRAME" string."""
    if isinstance(item, (tuple, ImageCondition)):
        return True
    return isinstance(item, str) and not Path(item).exists() and _FRAME_SUFFIX.match(item) is not None


def _one(item: Any, num_frames: int) -> ImageCondition:
    if isinstance(item, ImageCondition):
        frame, strength, source = item.frame_index, item.strength, item.pixels
    elif isinstance(item, tuple):
        if len(item) not in (2, 3):
            raise InvalidParameter("image", item, "is a tuple of the wrong length", _TYPE_HINT)
        source, frame, strength = item[0], item[1], item[2] if len(item) == 3 else 1.0
    elif isinstance(item, str) and not Path(item).exists() and _FRAME_SUFFIX.match(item):
        match = _FRAME_SUFFIX.match(item)
        source, frame, strength = match["path"], int(match["frame"]), 1.0
    else:
        source, frame, strength = item, 0, 1.0
    _check_frame(frame, num_frames)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise InvalidParameter(
            "image", strength, "has a strength outside [0, 1]", "1 keeps the image exactly"
        )
    return ImageCondition(_rgb_pixels(source), frame, float(strength))


def _check_frame(frame: Any, num_frames: int) -> None:
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise InvalidParameter("image", frame, "has a frame index that is not an integer")
    if not 0 <= frame < num_frames:
        raise InvalidParameter(
            "image",
            int(frame),
            f"is a frame index outside the video (0..{num_frames - 1} for num_frames={num_frames})",
            f"use a frame in 0..{num_frames - 1}",
        )


def _rgb_pixels(source: Any) -> np.ndarray:
    """RGB uint8 [H, W, 3] from a PIL image, a path or an array (an alpha channel is dropped, as officially)."""
    if isinstance(source, np.ndarray):
        return _array_pixels(source)
    if isinstance(source, (str, Path, Image.Image)):
        return np.asarray(load_image(source, "image"), dtype=np.uint8)
    raise InvalidParameter("image", type(source).__name__, "is not an image type ditto reads", _TYPE_HINT)


def _array_pixels(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InvalidParameter(
            "image", f"array of shape {array.shape}", "is not H x W, H x W x 3 or H x W x 4"
        )
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        if array.size and (np.nanmin(array) < 0.0 or np.nanmax(array) > 1.0 or np.isnan(array).any()):
            raise InvalidParameter("image", "float array", "has values outside [0, 1]", "scale it to [0, 1]")
        return to_uint8(array)
    raise InvalidParameter("image", f"array of dtype {array.dtype}", "is not uint8 or float", _TYPE_HINT)


def check_image_crf(crf: Any) -> int:
    if crf is None:
        return DEFAULT_IMAGE_CRF
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InvalidParameter("image_crf", crf, "is not an H.264 CRF in 0..51", "0 skips the re-compression")
    return crf


def check_compressible(condition: ImageCondition, crf: int) -> None:
    """H.264 needs an even frame of at least 2 x 2 pixels: the official code crops to even sides and fails below."""
    height, width = condition.pixels.shape[:2]
    if crf and (height < 2 or width < 2):
        raise InvalidParameter(
            "image", f"{width}x{height} image", "is too small to re-compress (H.264 needs 2x2 at least)",
            "give a larger image, or image_crf=0",
        )  # fmt: skip


def compress(pixels: np.ndarray, crf: int) -> np.ndarray:
    """One frame through libx264 at `crf` (veryfast, yuv420p, even sides) and back to RGB uint8."""
    if crf == 0:
        return pixels
    import av

    pixels = pixels[: pixels.shape[0] // 2 * 2, : pixels.shape[1] // 2 * 2]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = pixels.shape[:2]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24").reformat(
            format="yuv420p"
        )
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = next(container.decode(container.streams.video[0]))
        return decoded.to_ndarray(format="rgb24")


def fill_and_crop(pixels: np.ndarray, height: int, width: int) -> torch.Tensor:
    """RGB uint8 [h, w, 3] -> [1, 3, 1, height, width] float32 in [-1, 1]: bilinear resize (no antialias)
    until both sides cover the target, then a centre crop (ltx_pipelines resize_and_center_crop)."""
    image = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1)[None]
    src_h, src_w = image.shape[-2:]
    scale = max(height / src_h, width / src_w)
    # ceil: a rounding error must never leave the resized image a pixel short of the target.
    size = (math.ceil(src_h * scale), math.ceil(src_w * scale))
    image = torch.nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    image = image[:, :, top : top + height, left : left + width]
    return (image / 127.5 - 1.0).unsqueeze(2)


def prepared_pixels(condition: ImageCondition, height: int, width: int, crf: int) -> torch.Tensor:
    check_compressible(condition, crf)
    return fill_and_crop(compress(condition.pixels, crf), height, width)
