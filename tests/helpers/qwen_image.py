"""Tiny Qwen-Image folders, built once per test process, and deterministic input images."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


@functools.cache
def tiny_qwen_image(kind: str) -> Path:
    """`kind` "t2i" or "edit": a tiny random checkpoint folder, built on first use in this process."""
    from ditto.tiny.qwen_image import build_tiny_qwen_image, build_tiny_qwen_image_edit

    folder = Path(tempfile.mkdtemp(prefix=f"ditto-qwen-image-{kind}-")) / "model"
    (build_tiny_qwen_image_edit if kind == "edit" else build_tiny_qwen_image)(folder)
    return folder


def input_image(width: int, height: int, seed: int) -> Image.Image:
    """A smooth colour gradient plus noise: structure for the VAE and the vision tower to see."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1)
    pixels = np.clip(base * 0.8 + rng.rand(height, width, 3) * 0.2, 0, 1)
    return Image.fromarray((pixels * 255).astype(np.uint8))
