"""Normalisation and AdaLN modulation helpers shared by every DiT."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, eps: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """RMS norm computed in float32 and cast back, as the references do."""
    out = F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)
    return out * weight if weight is not None else out


def layer_norm_no_affine(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN: x * (1 + scale) + shift."""
    return x * (1 + scale) + shift


class RMSNorm(torch.nn.Module):
    """RMS norm with an optional learned weight, parameter named `weight` as in diffusers/torch."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim)) if elementwise_affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.eps, self.weight)
