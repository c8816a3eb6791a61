"""Rotary position embedding helpers shared by the DiTs.

Frequency vectors are built in float64 (NumPy), as the official LTX code does, then stored in float32;
the rotation itself runs in float32 and casts back to the input dtype.

Two layouts of the rotated channels exist:
- interleaved: channel pairs (2i, 2i+1) rotate together; cos/sin are [..., dim] (each value repeated).
- split: within each rope head, channel i rotates with channel i + half; cos/sin are [..., heads, half].
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch


@functools.lru_cache(maxsize=32)
def _power_grid_float64(theta: float, num_freqs: int) -> tuple[float, ...]:
    # theta ** linspace(0, 1, n) * pi / 2 in double precision, computed once per (theta, n).
    exponents = np.linspace(0.0, 1.0, num_freqs, dtype=np.float64)
    return tuple(float(v) for v in np.power(np.float64(theta), exponents) * math.pi / 2)


_FREQ_CACHE: dict[tuple[float, int, bool, torch.device], torch.Tensor] = {}


def power_frequencies(
    theta: float, num_freqs: int, device: torch.device | str = "cpu", double_precision: bool = True
) -> torch.Tensor:
    """The LTX frequency vector theta**linspace(0, 1, n) * pi/2 as float32, cached per (theta, n, device).

    double_precision (the default, and what released LTX checkpoints use): the maths runs in float64
    (NumPy) and only the result is rounded; otherwise it runs in float32 (old test configs).
    """
    device = torch.device(device)
    key = (float(theta), int(num_freqs), bool(double_precision), device)
    freqs = _FREQ_CACHE.get(key)
    if freqs is None:
        if double_precision:
            values = torch.tensor(_power_grid_float64(float(theta), int(num_freqs)), dtype=torch.float64)
        else:
            values = torch.pow(theta, torch.linspace(0.0, 1.0, num_freqs, dtype=torch.float32)) * math.pi / 2
        freqs = values.to(torch.float32).to(device)
        _FREQ_CACHE[key] = freqs
    return freqs


def apply_interleaved_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (2i, 2i+1) of the last dim; cos/sin broadcast against x ([..., dim]), or are the compact
    tables ([..., dim / 2], one value per pair: `rope_tables(compact=True)`)."""
    if cos.shape[-1] * 2 == x.shape[-1]:
        # The same products and sum per element as below (so the same bits), read from half-width tables.
        pairs = x.unflatten(-1, (-1, 2))
        even, odd = pairs.unbind(-1)
        rotated = torch.stack((-odd, even), dim=-1)
        out = pairs.float() * cos.unsqueeze(-1) + rotated.float() * sin.unsqueeze(-1)
        return out.flatten(-2).to(x.dtype)
    even, odd = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rotated = torch.stack((-odd, even), dim=-1).flatten(-2)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


def apply_split_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate half-split channels per rope head.

    x: [B, S, heads * 2 * half] (flat projections) or [B, S, heads, 2 * half];
    cos/sin: [B, S, heads, half]. The rope's head count decides the grouping, not the caller's layout.
    """
    heads, half = cos.shape[-2], cos.shape[-1]
    shape = x.shape
    halves = x.reshape(shape[0], shape[1], heads, 2, half).float()
    first, second = halves[..., 0, :], halves[..., 1, :]
    out_first = first * cos - second * sin
    out_second = second * cos + first * sin
    return torch.stack((out_first, out_second), dim=-2).reshape(shape).to(x.dtype)


def apply_rope(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], rope_type: str) -> torch.Tensor:
    """Dispatch on the layout name used by the configs ("interleaved" or "split")."""
    cos, sin = rope
    if rope_type == "split":
        return apply_split_rope(x, cos, sin)
    return apply_interleaved_rope(x, cos, sin)


def rope_tables(
    fractions: torch.Tensor,
    dim: int,
    theta: float,
    rope_type: str,
    num_heads: int,
    double_precision: bool = True,
    compact: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for positions given as fractions of the base extent.

    fractions: [B, S, P] (P position axes, e.g. 3 for frame/height/width, 1 for time).
    Every axis gets dim // (2P) frequencies, laid out frequency-major ([f0 p0, f0 p1, ..., f1 p0, ...]);
    the channels left over are padded at the front with an identity rotation (cos 1, sin 0).
    Returns [B, S, dim] tables (interleaved) or [B, S, num_heads, dim // (2 num_heads)] (split).
    compact (interleaved only): [B, S, dim // 2], each value once rather than repeated for both channels
    of its pair. The same rotation (`apply_interleaved_rope` takes either) from half the float32 table
    reads: at LTX-2's 14,080 tokens x 4,096 channels, 0.46 GB less per rotated q or k of a CFG pair.
    """
    num_axes = fractions.shape[-1]
    freqs = power_frequencies(theta, dim // (2 * num_axes), fractions.device, double_precision)
    angles = (fractions.unsqueeze(-1) * 2 - 1) * freqs  # [B, S, P, F]
    angles = angles.transpose(-1, -2).flatten(2)  # [B, S, F * P]
    cos, sin = angles.cos(), angles.sin()
    if rope_type == "split":
        pad = dim // 2 - angles.shape[-1]
        cos, sin = _pad_identity(cos, sin, pad)
        return cos.unflatten(-1, (num_heads, -1)), sin.unflatten(-1, (num_heads, -1))
    if compact:
        return _pad_identity(cos, sin, dim // 2 - angles.shape[-1])
    cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    return _pad_identity(cos, sin, dim % (2 * num_axes))


def _pad_identity(cos: torch.Tensor, sin: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    if pad == 0:
        return cos, sin
    ones = cos.new_ones(*cos.shape[:-1], pad)
    return torch.cat([ones, cos], dim=-1), torch.cat([torch.zeros_like(ones), sin], dim=-1)
