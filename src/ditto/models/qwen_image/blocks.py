"""Qwen-Image's dual-stream MMDiT block: text and image keep their own weights and meet in one attention.

Module and parameter names follow diffusers' `transformer_qwenimage.py` (img_mod.1, attn.to_q,
attn.add_q_proj, attn.norm_added_k, attn.to_out.0, attn.to_add_out, img_mlp.net.0.proj, ...), so a
diffusers checkpoint loads strictly. Attention goes through `ditto.layers.attention` only.
"""

from __future__ import annotations

import torch
from torch import nn

from ditto.layers.attention import attention
from ditto.layers.mlp import GeluFeedForward
from ditto.layers.norm import RMSNorm, layer_norm_no_affine, modulate, rms_norm_stepwise
from ditto.models.qwen_image.rope import Rope

# Compiled blocks rotate with the complex product too (diffusers' graph exactly, the product an eager kernel
# between inductor's), instead of writing it out in real arithmetic: for measuring only, it costs passes.
COMPILED_COMPLEX_ROPE = False


def rotate(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """RoPE on [B, S, H, D] (channel pairs interleaved), one table row per token for every head.

    Eager, as diffusers: each pair as a complex float32 number times the complex table, then back to x's
    dtype. The usual real form (x*cos + rotated*sin: separate products and a sum) rounds differently in
    float32 on CUDA, by an ulp at times, and the bf16 result with it: 1.7e-2 relative L2 after Qwen-Image's
    60 blocks on an H100, against 0 this way; it also passes over x eight times against three (208 vs 183 ms
    a forward). Compiled, inductor has no complex kernels (diffusers' compiled block runs the product as an
    eager kernel between two of its own), so ditto writes out the complex product itself, term for term as
    c10::complex's operator* does ((a*c - b*d) + (a*d + b*c) i): the same rounding, fused into the
    neighbouring kernels.
    """
    if torch.compiler.is_compiling() and not COMPILED_COMPLEX_ROPE:
        a, b = x.float().reshape(*x.shape[:-1], -1, 2).unbind(-1)
        c, d = rope.cis_real[:, None, :], rope.cis_imag[:, None, :]
        return torch.stack([a * c - b * d, a * d + b * c], dim=-1).flatten(-2).type_as(x)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rope.cis[:, None, :]).flatten(-2).type_as(x)


class HeadRMSNorm(RMSNorm):
    """The q/k RMS norm: eagerly the fused kernel (at 128 wide its bits equal diffusers' step-by-step norm,
    layers.norm, and it is cheaper: the steps cost 5 ms a 60-block forward on an H100); compiled, diffusers'
    steps, which inductor fuses all the same, so that the graph, and the kernels made of it, are the
    reference's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return rms_norm_stepwise(x, self.eps, self.weight)
        return super().forward(x)


def heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    return x.unflatten(-1, (-1, head_dim))


class JointAttention(nn.Module):
    """Q/K/V per stream, RMS-normed per head, RoPE'd, attended jointly as [text, image]."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        inner = heads * head_dim
        self.head_dim = head_dim
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner) for _ in range(3))
        self.add_q_proj, self.add_k_proj, self.add_v_proj = (nn.Linear(dim, inner) for _ in range(3))
        self.norm_q, self.norm_k = HeadRMSNorm(head_dim, eps), HeadRMSNorm(head_dim, eps)
        self.norm_added_q, self.norm_added_k = HeadRMSNorm(head_dim, eps), HeadRMSNorm(head_dim, eps)
        # Slot 1 is diffusers' dropout; an identity keeps the `to_out.0` key.
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Identity()])
        self.to_add_out = nn.Linear(inner, dim)

    def forward(
        self,
        img: torch.Tensor,
        txt: torch.Tensor,
        mask: torch.Tensor | None,
        img_rope: Rope,
        txt_rope: Rope,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # In the reference's order (projections, norms, RoPE, concatenation): compiled, the graph is then the
        # reference's node for node, and inductor fuses it into the same kernels.
        d = self.head_dim
        img_q, img_k, img_v = (heads(proj(img), d) for proj in (self.to_q, self.to_k, self.to_v))
        txt_proj = (self.add_q_proj, self.add_k_proj, self.add_v_proj)
        txt_q, txt_k, txt_v = (heads(proj(txt), d) for proj in txt_proj)
        img_q, img_k = self.norm_q(img_q), self.norm_k(img_k)
        txt_q, txt_k = self.norm_added_q(txt_q), self.norm_added_k(txt_k)
        img_q, img_k = rotate(img_q, img_rope), rotate(img_k, img_rope)
        txt_q, txt_k = rotate(txt_q, txt_rope), rotate(txt_k, txt_rope)
        joint = attention(
            torch.cat([txt_q, img_q], dim=1),
            torch.cat([txt_k, img_k], dim=1),
            torch.cat([txt_v, img_v], dim=1),
            mask,
        ).flatten(2)
        seq_txt = txt.shape[1]
        # As diffusers: each stream's slice is made contiguous before its projection. F.linear folds a
        # contiguous [B, S, D] input into one addmm (bias added in the kernel, rounded once); a strided slice
        # (batch > 1) takes matmul and then a separate bias add, which rounds twice in bf16 and costs a pass.
        txt_out, img_out = joint[:, :seq_txt], joint[:, seq_txt:]
        img_out = self.to_out[0](img_out.contiguous())
        return img_out, self.to_add_out(txt_out.contiguous())


def select_modulation(
    params: torch.Tensor, index: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, 3*dim] -> (shift, scale, gate), each [B, 1, dim]; or per token [B, L, dim] with `index`.

    With zero_cond_t the batch holds two sets (the real timestep, then t=0); `index` [B, L] picks set 0
    for the generated image's tokens and set 1 for the reference images' tokens.
    """
    shift, scale, gate = params.chunk(3, dim=-1)
    if index is None:
        return shift.unsqueeze(1), scale.unsqueeze(1), gate.unsqueeze(1)
    half = shift.shape[0] // 2
    first = index.unsqueeze(-1) == 0
    return tuple(
        torch.where(first, p[:half].unsqueeze(1), p[half:].unsqueeze(1)) for p in (shift, scale, gate)
    )


class QwenImageBlock(nn.Module):
    def __init__(
        self, dim: int, heads: int, head_dim: int, eps: float = 1e-6, zero_cond_t: bool = False
    ) -> None:
        super().__init__()
        self.eps = eps
        self.zero_cond_t = zero_cond_t
        self.img_mod = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.txt_mod = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.attn = JointAttention(dim, heads, head_dim, eps)
        self.img_mlp = GeluFeedForward(dim, dim_out=dim)
        self.txt_mlp = GeluFeedForward(dim, dim_out=dim)

    def forward(
        self,
        img: torch.Tensor,
        txt: torch.Tensor,
        temb: torch.Tensor,
        mask: torch.Tensor | None,
        rope: tuple[Rope, Rope],
        modulate_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (text, image), as the reference. The body follows the reference's statement order: compiled,
        the graph is then the reference's node for node and inductor fuses it into the same kernels."""
        img_params = self.img_mod(temb)
        # With zero_cond_t the text stream is modulated by the real timestep only (the first half).
        txt_params = self.txt_mod(temb.chunk(2, dim=0)[0] if self.zero_cond_t else temb)
        img_mod1, img_mod2 = img_params.chunk(2, dim=-1)
        txt_mod1, txt_mod2 = txt_params.chunk(2, dim=-1)

        img_normed = layer_norm_no_affine(img, self.eps)
        img_shift, img_scale, img_gate = select_modulation(img_mod1, modulate_index)
        img_modulated = modulate(img_normed, img_shift, img_scale)
        txt_normed = layer_norm_no_affine(txt, self.eps)
        txt_shift, txt_scale, txt_gate = select_modulation(txt_mod1, None)
        txt_modulated = modulate(txt_normed, txt_shift, txt_scale)
        img_attn, txt_attn = self.attn(img_modulated, txt_modulated, mask, *rope)
        img = img + img_gate * img_attn
        txt = txt + txt_gate * txt_attn

        img_normed = layer_norm_no_affine(img, self.eps)
        img_shift, img_scale, img_gate = select_modulation(img_mod2, modulate_index)
        img = img + img_gate * self.img_mlp(modulate(img_normed, img_shift, img_scale))
        txt_normed = layer_norm_no_affine(txt, self.eps)
        txt_shift, txt_scale, txt_gate = select_modulation(txt_mod2, None)
        txt = txt + txt_gate * self.txt_mlp(modulate(txt_normed, txt_shift, txt_scale))
        if img.dtype == torch.float16:
            # As the reference: keep float16 activations finite.
            txt, img = txt.clip(-65504, 65504), img.clip(-65504, 65504)
        return txt, img
