"""LTX-2 timestep conditioning: AdaLN-single (PixArt-alpha style) with a configurable row count."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ditto.layers.embeddings import TimestepMLP, timestep_sinusoid


class _TimestepEmbed(nn.Module):
    """256-channel sinusoid then an MLP; the module path `emb.timestep_embedder` matches diffusers."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.timestep_embedder = TimestepMLP(256, dim)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.timestep_embedder(timestep_sinusoid(t, 256).to(dtype))


class LTX2AdaLNSingle(nn.Module):
    """timestep -> (num_mod_params * dim modulation vector, dim embedding)."""

    def __init__(self, dim: int, num_mod_params: int = 6) -> None:
        super().__init__()
        self.num_mod_params = num_mod_params
        self.emb = _TimestepEmbed(dim)
        self.linear = nn.Linear(dim, num_mod_params * dim)

    def forward(
        self, t: torch.Tensor, batch_size: int, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """t: any shape whose numel is a multiple of batch_size. Returns [B, T, n*dim], [B, T, dim]."""
        embedded = self.emb(t.flatten(), dtype)
        modulation = self.linear(F.silu(embedded))
        return modulation.view(batch_size, -1, modulation.shape[-1]), embedded.view(
            batch_size, -1, embedded.shape[-1]
        )
