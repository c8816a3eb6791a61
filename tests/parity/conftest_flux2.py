"""Shared FLUX.2 Klein test helpers: tiny checkpoints built once per process, thresholds, metrics.

Import it from a test module (`from conftest_flux2 import ...`); the folders are cached per process so
every Klein test file in one pytest run shares them.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
THREADS = 2  # fixed: float32 results move by ~1e-6 between thread counts
torch.set_num_threads(THREADS)


@functools.cache
def tiny_klein(variant: str = "distilled") -> Path:
    """A tiny Klein folder ("distilled" or "base"), built once per process and removed at exit."""
    from ditto.tiny.flux2 import build_tiny_flux2_klein

    root = Path(tempfile.mkdtemp(prefix=f"ditto-tiny-klein-{variant}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    build_tiny_flux2_klein(root, distilled=variant == "distilled")
    return root


@functools.cache
def thresholds() -> dict[str, float]:
    """Allowed numbers: tests/parity/thresholds.json (merged) if it has flux2-klein, else thresholds_flux2.json."""
    for name in ("thresholds.json", "thresholds_flux2.json"):
        path = HERE / name
        if path.exists():
            data = json.loads(path.read_text())
            if "flux2-klein" in data:
                return data["flux2-klein"]
    raise FileNotFoundError("no flux2-klein thresholds in tests/parity/thresholds*.json")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def reference_image(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic smooth RGB test picture (gradients plus noise), not a flat colour."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1)
    pixels = np.clip(base * 200 + rng.randint(0, 55, size=(height, width, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def check_close(case: str, measured: float, allowed: float, what: str = "latents max abs diff") -> None:
    """Assert measured <= allowed, printing both so a failure says exactly what to compare or paste."""
    print(f"[flux2-klein] {case}: {what} = {measured:.3g} (allowed {allowed:.3g})", file=sys.stderr)
    assert measured <= allowed, f"{case}: {what} measured {measured:.6g} > allowed {allowed:.6g}"
