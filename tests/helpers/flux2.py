"""FLUX.2 Klein test helpers: tiny checkpoints built once per process (every Klein test file in one pytest
run shares them) and a deterministic reference picture."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


@functools.cache
def tiny_klein(variant: str = "distilled") -> Path:
    """A tiny Klein folder ("distilled" or "base"), built once per process and removed at exit."""
    from ditto.tiny.flux2 import build_tiny_flux2_klein

    root = Path(tempfile.mkdtemp(prefix=f"ditto-tiny-klein-{variant}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    build_tiny_flux2_klein(root, distilled=variant == "distilled")
    return root


def reference_image(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic smooth RGB test picture (gradients plus noise), not a flat colour."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1)
    pixels = np.clip(base * 200 + rng.randint(0, 55, size=(height, width, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)
