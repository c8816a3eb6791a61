"""Sinusoidal timestep features (the DDPM / diffusers `get_timestep_embedding` definition)."""

from __future__ import annotations

import math

import torch


def timestep_features(
    timesteps: torch.Tensor,
    dim: int,
    flip_sin_to_cos: bool = True,
    downscale_freq_shift: float = 0.0,
    scale: float = 1.0,
    max_period: float = 10000.0,
) -> torch.Tensor:
    """[N] timesteps (may be fractional) -> [N, dim] float32 features, sin|cos (or cos|sin when flipped).

    The frequency table is float32, as in the reference, so the features match it bit for bit.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(exponent / (half - downscale_freq_shift))
    angles = scale * (timesteps[:, None].float() * freqs[None, :])
    sin, cos = torch.sin(angles), torch.cos(angles)
    features = torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)
    if dim % 2 == 1:
        features = torch.nn.functional.pad(features, (0, 1))
    return features
