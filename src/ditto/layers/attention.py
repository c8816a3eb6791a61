"""The one attention function. Every model calls `attention`; backends and masks are decided here only.

Layout: q, k, v are [batch, seq, heads, head_dim] (the layout projections produce without a copy).
mask: None, a boolean keep-mask (True = attend) or an additive float mask, broadcastable to
[batch, heads, q_len, k_len].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention; returns [batch, q_len, heads, head_dim]."""
    if k.shape[2] != q.shape[2]:
        # Grouped-query attention: repeat K/V heads explicitly (what the official Gemma code does).
        repeat = q.shape[2] // k.shape[2]
        k = k.repeat_interleave(repeat, dim=2)
        v = v.repeat_interleave(repeat, dim=2)
    if mask is not None and mask.dtype != torch.bool and mask.dtype != q.dtype:
        mask = mask.to(q.dtype)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2)


def naive_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain softmax attention in float64, for tests: the definition `attention` must match."""
    q64, k64, v64 = (t.transpose(1, 2).double() for t in (q, k, v))
    scores = q64 @ k64.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = (
            scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.double()
        )
    return (scores.softmax(-1) @ v64).transpose(1, 2).to(q.dtype)
