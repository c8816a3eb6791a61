"""The one rule from float pixels to 8 bits, used by every output (PNG, MP4, PIL) and image input.

diffusers' `numpy_to_pil` rule: clip to [0, 1], scale by 255, round half to even. A PIL result and a
written file of the same request hold the same bytes, and they equal diffusers' PIL output.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def to_uint8(pixels: Any) -> np.ndarray:
    """Float pixels in [0, 1] (any shape), a PIL image or a list of them -> uint8; uint8 passes through."""
    if not isinstance(pixels, np.ndarray):
        pixels = (
            np.stack([np.asarray(image.convert("RGB")) for image in pixels])
            if isinstance(pixels, list)
            else np.asarray(pixels.convert("RGB"))
        )
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_pil(images: np.ndarray) -> list[Any]:
    """[N, H, W, 3] float in [0, 1] -> N PIL images (output_type="pil")."""
    from PIL import Image

    return [Image.fromarray(image) for image in to_uint8(images)]
