"""LTX-2 attention layer: QK RMS-norm across heads, separate query/key RoPE, optional per-head gates.

Parameter names follow diffusers' LTX2Attention (to_q, to_k, to_v, norm_q, norm_k, to_out.0,
to_gate_logits). The projections are separate Linear layers (the checkpoint format);
`fuse_projections` builds one QKV (self-attention) or KV (cross-attention) matrix from them at load
time, kept as non-persistent buffers so state_dict keys do not change.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ditto.layers.attention import attention
from ditto.layers.linear import fuse_linears
from ditto.layers.qk_norm_rope import LAYOUTS, fused_norm_rope_available, fused_qk_norm_rope
from ditto.layers.rope import apply_rope

Rope = tuple[torch.Tensor, torch.Tensor]

# Perturbation modes for spatio-temporal guidance (STG) on a self-attention.
PERTURB_ALL = "all"
Perturb = torch.Tensor | str  # PERTURB_ALL, or a per-sample blend weight (see LTX2Attention.forward)


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
        # Set by fuse_projections: None, "qkv" (one product for self-attention) or "kv" (cross-attention).
        self.fused: str | None = None
        self.register_buffer("fused_weight", None, persistent=False)
        self.register_buffer("fused_bias", None, persistent=False)
        # Set by use_fused_qk_rope: None (plain ops), or the output layout of the one-kernel q/k norm + RoPE.
        self.fused_qk_rope: str | None = None

    def fuse_projections(self, self_attention: bool) -> None:
        """Fuse Q, K and V (self_attention) or K and V (cross-attention: they read the same context).

        The outputs equal the unfused ones up to matrix-product rounding; the separate layers keep
        working (they become views into the fused weight), e.g. for the STG value-only path.
        """
        layers = [self.to_q, self.to_k, self.to_v] if self_attention else [self.to_k, self.to_v]
        self.fused_weight, self.fused_bias = fuse_linears(layers)
        self.fused = "qkv" if self_attention else "kv"

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        q_rope: Rope | None = None,
        k_rope: Rope | None = None,
        perturb: Perturb | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        split: Any = None,
    ) -> torch.Tensor:
        """x: [B, S, query_dim]; context: [B, L, context_dim] (None = self-attention).

        kv: the context's keys and values from `project_context`, computed earlier (the text K/V cache);
        then `context` is not read. split: the call's sequence-parallel split (layers.attention), or None.

        perturb (STG): None = plain attention; PERTURB_ALL = every sample's output is its values
        (no attention computed); a tensor w broadcastable to [B, S, 1] blends lerp(values, attn, w).
        """
        self_attention = context is None
        context = x if context is None else context
        if isinstance(perturb, str):
            out = value = self.to_v(context)
        else:
            q, k, value = (self.to_q(x), *kv) if kv is not None else self._project(x, context, self_attention)
            out = self._attend(q, k, value, mask, q_rope, k_rope, split)
            if perturb is not None:
                out = torch.lerp(value, out, perturb.to(device=out.device, dtype=out.dtype))
        if self.to_gate_logits is not None:
            # 2 * sigmoid: zero-initialised logits give gates of exactly one.
            gates = 2.0 * torch.sigmoid(self.to_gate_logits(x))
            out = (out.unflatten(-1, (self.heads, -1)) * gates.unsqueeze(-1)).flatten(-2)
        return self.to_out[0](out)

    def _project(
        self, x: torch.Tensor, context: torch.Tensor, self_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.fused == "qkv" and self_attention:
            q, k, v = F.linear(x, self.fused_weight, self.fused_bias).chunk(3, dim=-1)
            return q, k, v
        if self.fused is not None:
            k, v = F.linear(context, self.fused_weight[-2 * self.to_k.out_features :], self._kv_bias()).chunk(
                2, dim=-1
            )
            return self.to_q(x), k, v
        return self.to_q(x), self.to_k(context), self.to_v(context)

    def project_context(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values of a cross-attention's context (what `kv=` takes), fused or not."""
        return self._project(context[:, :0], context, self_attention=False)[1:]

    def _kv_bias(self) -> torch.Tensor | None:
        return None if self.fused_bias is None else self.fused_bias[-2 * self.to_k.out_features :]

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        q_rope: Rope | None,
        k_rope: Rope | None,
        split: Any = None,
    ) -> torch.Tensor:
        q, k = self._norm_rope(q, k, q_rope, k_rope)
        out = attention(q, k, value.unflatten(-1, (self.heads, -1)), mask, split)
        return out.flatten(-2)

    def _norm_rope(
        self, q: torch.Tensor, k: torch.Tensor, q_rope: Rope | None, k_rope: Rope | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q and k RMS-normed and rotated, as [B, S, heads, head_dim]: one kernel where switched on and the
        inputs fit it (layers/qk_norm_rope.py), else the plain ops."""
        if self.fused_qk_rope is not None and q_rope is not None:
            fused = fused_qk_norm_rope(
                q, k, self.norm_q, self.norm_k, q_rope, k_rope, self.rope_type, self.heads, self.fused_qk_rope
            )
            if fused is not None:
                return fused
        q = self.norm_q(q)
        k = self.norm_k(k)
        if q_rope is not None:
            q = apply_rope(q, q_rope, self.rope_type)
            k = apply_rope(k, k_rope if k_rope is not None else q_rope, self.rope_type)
        return q.unflatten(-1, (self.heads, -1)), k.unflatten(-1, (self.heads, -1))


def use_fused_qk_rope(model: nn.Module, layout: str | None = "bshd") -> int:
    """Switch every LTX2Attention of `model` to the one-kernel q/k norm + RoPE writing `layout` ("bshd": the
    projections' [B, S, H*D]; "bhsd": dense [B, H, S, D]), or back to the plain ops (None). Returns how many
    were switched on: 0 where the kernel cannot run (no CUDA GPU or Triton). Opt-in until measured; set it
    before compiling (a compiled block recompiles on change)."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"fused q/k RoPE layout {layout!r}: choose from {LAYOUTS} or None")
    chosen = layout if layout is not None and fused_norm_rope_available() else None
    layers = [module for module in model.modules() if isinstance(module, LTX2Attention)]
    for layer in layers:
        layer.fused_qk_rope = chosen
    return len(layers) if chosen is not None else 0
