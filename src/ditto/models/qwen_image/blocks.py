"""Qwen-Image's dual-stream MMDiT block: text and image keep their own weights and meet in one attention.

Module and parameter names follow diffusers' `transformer_qwenimage.py` (img_mod.1, attn.to_q,
attn.add_q_proj, attn.norm_added_k, attn.to_out.0, attn.to_add_out, img_mlp.net.0.proj, ...), so a
diffusers checkpoint loads strictly. Attention goes through `ditto.layers.attention` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from ditto.layers.attention import attention
from ditto.layers.mlp import GeluFeedForward
from ditto.layers.norm import RMSNorm, layer_norm_no_affine, modulate
from ditto.layers.rope import apply_interleaved_rope
from ditto.models.qwen_image.rope import Rope
from ditto.parallel.plan import SequencePlan, SequenceSplit, Tokens, attention_split
from ditto.runtime.contract import BlockCall, BlockPlan, Streams

IMAGE, TEXT = ("image",), ("text",)
JOINT = ("text", "image")  # the joint attention's order
# Sequence parallelism (parallel/plan.py): the streams are (image, text); the RoPE tables (image, text) and the
# edit model's per-token modulation index run along them. The joint mask covers the whole joint sequence.
SEQUENCE_PLAN = SequencePlan(
    streams=(IMAGE, TEXT),
    inputs={"rope": (Tokens(IMAGE, 0), Tokens(TEXT, 0)), "modulate_index": Tokens(IMAGE, 1)},
    attentions=((JOINT, JOINT),),
)


def rotate(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """RoPE on [B, S, H, D] (channel pairs interleaved), one table row per token for every head.

    Eager, as diffusers: each pair as a complex float32 number times the complex table, then back to x's
    dtype. The real form (x*cos + rotated*sin: separate products and a sum) rounds differently in float32
    on CUDA, by an ulp at times, and the bf16 result with it: 1.7e-2 relative L2 after Qwen-Image's 60
    blocks on an H100, against 0 this way; it also passes over x eight times against three (208 vs 183 ms
    a forward). Compiled, the real form: inductor has no complex kernels and would leave the product as
    unfused eager ops, while the real form fuses into the neighbouring kernels.
    """
    if torch.compiler.is_compiling():
        return apply_interleaved_rope(x, rope.cos[:, None, :], rope.sin[:, None, :])
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rope.cis[:, None, :]).flatten(-2).type_as(x)


class JointAttention(nn.Module):
    """Q/K/V per stream, RMS-normed per head, RoPE'd, attended jointly as [text, image]."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        inner = heads * head_dim
        self.head_dim = head_dim
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner) for _ in range(3))
        self.add_q_proj, self.add_k_proj, self.add_v_proj = (nn.Linear(dim, inner) for _ in range(3))
        # The fused RMS norm: at 128 wide its bits equal diffusers' step-by-step norm (layers.norm), and it
        # is cheaper (the steps cost 5 ms a 60-block forward on an H100).
        self.norm_q, self.norm_k = RMSNorm(head_dim, eps), RMSNorm(head_dim, eps)
        self.norm_added_q, self.norm_added_k = RMSNorm(head_dim, eps), RMSNorm(head_dim, eps)
        # Slot 1 is diffusers' dropout; an identity keeps the `to_out.0` key.
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Identity()])
        self.to_add_out = nn.Linear(inner, dim)

    def _qkv(self, x: torch.Tensor, image: bool, rope: Rope) -> tuple[torch.Tensor, ...]:
        q_proj, k_proj, v_proj = (
            (self.to_q, self.to_k, self.to_v)
            if image
            else (self.add_q_proj, self.add_k_proj, self.add_v_proj)
        )
        q_norm, k_norm = (self.norm_q, self.norm_k) if image else (self.norm_added_q, self.norm_added_k)
        q = q_norm(q_proj(x).unflatten(-1, (-1, self.head_dim)))
        k = k_norm(k_proj(x).unflatten(-1, (-1, self.head_dim)))
        v = v_proj(x).unflatten(-1, (-1, self.head_dim))
        return rotate(q, rope), rotate(k, rope), v

    def forward(
        self,
        img: torch.Tensor,
        txt: torch.Tensor,
        mask: torch.Tensor | None,
        img_rope: Rope,
        txt_rope: Rope,
        split: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """split: the joint attention's sequence-parallel split (layers.attention), or None."""
        img_q, img_k, img_v = self._qkv(img, True, img_rope)
        txt_q, txt_k, txt_v = self._qkv(txt, False, txt_rope)
        joint = attention(
            torch.cat([txt_q, img_q], dim=1),
            torch.cat([txt_k, img_k], dim=1),
            torch.cat([txt_v, img_v], dim=1),
            mask,
            split,
        ).flatten(2)
        seq_txt = txt.shape[1]
        # As diffusers: each stream's slice is made contiguous before its projection. F.linear folds a
        # contiguous [B, S, D] input into one addmm (bias added in the kernel, rounded once); a strided slice
        # (batch > 1) takes matmul and then a separate bias add, which rounds twice in bf16 and costs a pass.
        img_out, txt_out = joint[:, seq_txt:].contiguous(), joint[:, :seq_txt].contiguous()
        return self.to_out[0](img_out), self.to_add_out(txt_out)


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
        split: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        img_mod1, img_mod2 = self.img_mod(temb).chunk(2, dim=-1)
        # With zero_cond_t the text stream is modulated by the real timestep only (the first half).
        txt_temb = temb.chunk(2, dim=0)[0] if self.zero_cond_t else temb
        txt_mod1, txt_mod2 = self.txt_mod(txt_temb).chunk(2, dim=-1)

        img_shift, img_scale, img_gate = select_modulation(img_mod1, modulate_index)
        txt_shift, txt_scale, txt_gate = select_modulation(txt_mod1, None)
        img_attn, txt_attn = self.attn(
            modulate(layer_norm_no_affine(img, self.eps), img_shift, img_scale),
            modulate(layer_norm_no_affine(txt, self.eps), txt_shift, txt_scale),
            mask,
            *rope,
            split,
        )
        img = img + img_gate * img_attn
        txt = txt + txt_gate * txt_attn

        img_shift, img_scale, img_gate = select_modulation(img_mod2, modulate_index)
        txt_shift, txt_scale, txt_gate = select_modulation(txt_mod2, None)
        img = img + img_gate * self.img_mlp(
            modulate(layer_norm_no_affine(img, self.eps), img_shift, img_scale)
        )
        txt = txt + txt_gate * self.txt_mlp(
            modulate(layer_norm_no_affine(txt, self.eps), txt_shift, txt_scale)
        )
        if img.dtype == torch.float16:
            # As the reference: keep float16 activations finite.
            img, txt = img.clip(-65504, 65504), txt.clip(-65504, 65504)
        return img, txt


@dataclass(frozen=True)
class QwenImageBlockInputs:
    """What every block of one forward reads besides the streams."""

    temb: torch.Tensor  # [B, dim] timestep embedding ([2B, dim] with zero_cond_t: the real t, then t=0)
    mask: torch.Tensor | None  # [B, 1, 1, S_txt + S_img] joint keep-mask; None when all text is valid
    rope: tuple[Rope, Rope]  # (image, text) tables
    modulate_index: torch.Tensor | None  # zero_cond_t: [B, S_img] 0 generated / 1 reference tokens
    sequence: Any = None  # the sequence-parallel layout of this rank's tokens (parallel/sequence.py), or None


def run_block(block: QwenImageBlock, inputs: QwenImageBlockInputs, streams: Streams) -> Streams:
    img, txt = streams
    split = attention_split(inputs.sequence, JOINT, JOINT)
    return block(img, txt, inputs.temb, inputs.mask, inputs.rope, inputs.modulate_index, split)


def block_plan(blocks: Iterable[QwenImageBlock], inputs: QwenImageBlockInputs) -> BlockPlan:
    """Every block on the streams (image, text); no transitions. Declares its sequences (SEQUENCE_PLAN)."""
    blocks = list(blocks)

    def build(block_inputs: QwenImageBlockInputs) -> BlockPlan:
        return BlockPlan([BlockCall(block, partial(run_block, block, block_inputs)) for block in blocks])

    plan = build(inputs)
    return BlockPlan(plan.calls, sequence=SequenceSplit(SEQUENCE_PLAN, inputs, build))
