"""Timestep and caption embeddings shared by the DiTs (parameter names follow diffusers)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_sinusoid(
    t: torch.Tensor,
    dim: int = 256,
    flip_sin_to_cos: bool = True,
    downscale_freq_shift: float = 0.0,
    max_period: float = 10000.0,
) -> torch.Tensor:
    """DDPM sinusoidal embedding of a 1-D tensor of (possibly fractional) timesteps, in float32.

    Frequencies exp(-ln(max_period) * i / (half - shift)); output [cos | sin] when flip_sin_to_cos.
    """
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=t.device) * -math.log(max_period)
    freqs = torch.exp(exponent / (half - downscale_freq_shift))
    angles = t[:, None].float() * freqs[None, :]
    parts = (angles.cos(), angles.sin()) if flip_sin_to_cos else (angles.sin(), angles.cos())
    emb = torch.cat(parts, dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 == 1 else emb


class TimestepMLP(nn.Module):
    """linear_1 -> SiLU -> linear_2: the timestep embedder MLP (diffusers' TimestepEmbedding)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class CaptionProjection(nn.Module):
    """linear_1 -> GELU(tanh) -> linear_2: projects text-encoder features to the model width."""

    def __init__(self, in_features: int, hidden_size: int, out_features: int | None = None) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, out_features or hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))
