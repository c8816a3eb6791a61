"""Feed-forward blocks (parameter names follow diffusers' FeedForward: net.0.proj, net.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ProjGelu(nn.Module):
    """Linear then tanh-approximated GELU; the linear is named `proj` as in diffusers."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class GeluFeedForward(nn.Module):
    """dim -> mult*dim (GELU tanh) -> dim_out. Slot 1 is an identity where diffusers keeps a dropout."""

    def __init__(self, dim: int, mult: float = 4.0, dim_out: int | None = None, bias: bool = True) -> None:
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.ModuleList(
            [_ProjGelu(dim, inner, bias), nn.Identity(), nn.Linear(inner, dim_out or dim, bias=bias)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))
