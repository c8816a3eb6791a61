"""LTX-2 attention layer: QK RMS-norm across heads, separate query/key RoPE, optional per-head gates.

Parameter names follow diffusers' LTX2Attention (to_q, to_k, to_v, norm_q, norm_k, to_out.0,
to_gate_logits). The three projections stay separate Linear layers so a fused QKV can be built
from them later without renaming checkpoint keys.
"""

from __future__ import annotations

import torch
from torch import nn

from ditto.layers.attention import attention
from ditto.layers.rope import apply_rope

Rope = tuple[torch.Tensor, torch.Tensor]

# Perturbation modes for spatio-temporal guidance (STG) on a self-attention.
PERTURB_ALL = "all"


class LTX2Attention(nn.Module):
    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        context_dim: int | None = None,
        bias: bool = True,
        out_bias: bool = True,
        rope_type: str = "interleaved",
        gated: bool = False,
        qk_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads, self.rope_type = heads, rope_type
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(context_dim, inner, bias=bias)
        self.to_v = nn.Linear(context_dim, inner, bias=bias)
        # torch.nn.RMSNorm, like the reference: the norm spans all heads at once.
        self.norm_q = nn.RMSNorm(inner, eps=qk_norm_eps, elementwise_affine=True)
        self.norm_k = nn.RMSNorm(inner, eps=qk_norm_eps, elementwise_affine=True)
        # Slot 1 holds no weights (a dropout in diffusers); an identity keeps the index of to_out.0.
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=out_bias), nn.Identity()])
        self.to_gate_logits = nn.Linear(query_dim, heads, bias=True) if gated else None

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        q_rope: Rope | None = None,
        k_rope: Rope | None = None,
        perturb: torch.Tensor | str | None = None,
    ) -> torch.Tensor:
        """x: [B, S, query_dim]; context: [B, L, context_dim] (None = self-attention).

        perturb (STG): None = plain attention; PERTURB_ALL = every sample's output is its values
        (no attention computed); a tensor w broadcastable to [B, S, 1] blends lerp(values, attn, w).
        """
        context = x if context is None else context
        value = self.to_v(context)
        if isinstance(perturb, str):
            out = value
        else:
            out = self._attend(x, context, value, mask, q_rope, k_rope)
            if perturb is not None:
                out = torch.lerp(value, out, perturb.to(device=out.device, dtype=out.dtype))
        if self.to_gate_logits is not None:
            # 2 * sigmoid: zero-initialised logits give gates of exactly one.
            gates = 2.0 * torch.sigmoid(self.to_gate_logits(x))
            out = (out.unflatten(-1, (self.heads, -1)) * gates.unsqueeze(-1)).flatten(-2)
        return self.to_out[0](out)

    def _attend(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        q_rope: Rope | None,
        k_rope: Rope | None,
    ) -> torch.Tensor:
        q = self.norm_q(self.to_q(x))
        k = self.norm_k(self.to_k(context))
        if q_rope is not None:
            q = apply_rope(q, q_rope, self.rope_type)
            k = apply_rope(k, k_rope if k_rope is not None else q_rope, self.rope_type)
        heads = self.heads
        out = attention(
            q.unflatten(-1, (heads, -1)), k.unflatten(-1, (heads, -1)), value.unflatten(-1, (heads, -1)), mask
        )
        return out.flatten(-2)
