"""AdaLN-single style modulation: a learned per-layer table plus a timestep-dependent embedding."""

from __future__ import annotations

import torch


def table_modulation(table: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Split `table + emb` into its n modulation vectors.

    table: [n, D] learned per-layer values; emb: [B, T, n * D] (T = 1 for one timestep per sample,
    or one per token). Returns n tensors of shape [B, T, D], in table-row order.
    """
    n, dim = table.shape
    values = table + emb.unflatten(-1, (n, dim))
    return values.unbind(dim=-2)
