"""Comparison metrics of the tests: one definition each, computed in float64."""

from __future__ import annotations

import math

import numpy as np
import torch


def _float64(x) -> torch.Tensor:
    return (x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))).detach().double()


def max_abs(a, b) -> float:
    """Largest absolute difference of two tensors or arrays of the same shape."""
    a, b = _float64(a), _float64(b)
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return float((a - b).abs().max())


def psnr(a, b, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two arrays in [0, peak]; inf when identical."""
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def rel_l2(got, want) -> float:
    """||got - want|| / ||want||."""
    got, want = _float64(got), _float64(want)
    return float((got - want).norm() / want.norm())
