"""Comparison metrics used by the parity tests and the benchmarks."""

from __future__ import annotations

import math

import numpy as np
import torch


def max_abs(a, b) -> float:
    return float(
        (
            torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a).double()
            - torch.as_tensor(np.asarray(b) if not torch.is_tensor(b) else b).double()
        )
        .abs()
        .max()
    )


def psnr(a, b, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two arrays in [0, peak]; inf when identical."""
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def cosine_and_rel_l2(reference: torch.Tensor, candidate: torch.Tensor) -> tuple[float, float]:
    ref, cand = reference.double().flatten(), candidate.double().flatten()
    cosine = float(torch.nn.functional.cosine_similarity(ref, cand, dim=0))
    rel_l2 = float((ref - cand).norm() / ref.norm().clamp_min(1e-30))
    return cosine, rel_l2
