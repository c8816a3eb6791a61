"""FLUX.2 building blocks: double-stream (text and image apart, joint attention) and single-stream blocks.

Module and parameter names follow diffusers' `transformer_flux2.py` so a diffusers checkpoint loads with
`strict=True`. Every projection is bias-free, as in FLUX.2. Attention goes through `ditto.layers.attention`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ditto.layers.attention import attention
from ditto.layers.norm import layer_norm_no_affine, modulate
from ditto.layers.rope import apply_interleaved_rope
from ditto.parallel.plan import SequencePlan, SequenceSplit, Tokens, attention_split
from ditto.runtime.contract import BlockCall, BlockPlan, Streams

Rope = tuple[torch.Tensor, torch.Tensor]  # cos, sin [seq, head_dim], text tokens first


def swiglu(x: torch.Tensor) -> torch.Tensor:
    """FLUX.2's gated unit: the first half gates the second, silu(a) * b (slices, as the reference)."""
    half = x.shape[-1] // 2
    return F.silu(x[..., :half]) * x[..., half:]


def split_modulation(mod: torch.Tensor, sets: int) -> list[tuple[torch.Tensor, ...]]:
    """[B, 3*sets*dim] -> `sets` triples (shift, scale, gate), each [B, 1, dim]."""
    parts = mod.unsqueeze(1).chunk(3 * sets, dim=-1)
    return [tuple(parts[3 * i : 3 * i + 3]) for i in range(sets)]


class QKNorm(nn.Module):
    """RMS norm over a head's channels with the weight applied inside the fused op, as torch.nn.RMSNorm
    (what the reference uses): in bf16 the result is rounded once, not before and after the weight."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class Modulation(nn.Module):
    """silu(temb) -> linear: the shift/scale/gate vectors of `sets` AdaLN sites."""

    def __init__(self, dim: int, sets: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim * 3 * sets, bias=False)

    def forward(self, temb: torch.Tensor) -> torch.Tensor:
        return self.linear(F.silu(temb))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        inner = int(dim * mlp_ratio)
        self.linear_in = nn.Linear(dim, inner * 2, bias=False)
        self.linear_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_out(swiglu(self.linear_in(x)))


def heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    return x.unflatten(-1, (-1, head_dim))


def rotate(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """Interleaved RoPE on [B, S, H, D], cos/sin [S, D] broadcast over batch and heads."""
    return apply_interleaved_rope(x, rope[0][None, :, None, :], rope[1][None, :, None, :])


def rope_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: Rope, split: Any = None
) -> torch.Tensor:
    """RoPE on q/k, joint attention (split: its sequence-parallel split, or None), heads merged: [B, S, H*D]."""
    q, k = rotate(q, rope), rotate(k, rope)
    return attention(q, k, v, split=split).flatten(2, 3).to(q.dtype)


class JointAttention(nn.Module):
    """Image projections (to_*) and text projections (add_*), one attention over [text, image]."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, eps: float) -> None:
        super().__init__()
        inner = num_heads * head_dim
        self.head_dim = head_dim
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner, bias=False) for _ in range(3))
        self.norm_q, self.norm_k = QKNorm(head_dim, eps), QKNorm(head_dim, eps)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim, bias=False)])
        self.add_q_proj, self.add_k_proj, self.add_v_proj = (
            nn.Linear(dim, inner, bias=False) for _ in range(3)
        )
        self.norm_added_q, self.norm_added_k = QKNorm(head_dim, eps), QKNorm(head_dim, eps)
        self.to_add_out = nn.Linear(inner, dim, bias=False)

    def forward(
        self, img: torch.Tensor, txt: torch.Tensor, rope: Rope, split: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # In the reference's order (projections, norms, concatenation, RoPE, output projections text first):
        # compiled, the graph is then the reference's node for node and inductor fuses it the same way.
        d = self.head_dim
        q, k, v = heads(self.to_q(img), d), heads(self.to_k(img), d), heads(self.to_v(img), d)
        txt_q, txt_k = heads(self.add_q_proj(txt), d), heads(self.add_k_proj(txt), d)
        txt_v = heads(self.add_v_proj(txt), d)
        q, k = self.norm_q(q), self.norm_k(k)
        txt_q, txt_k = self.norm_added_q(txt_q), self.norm_added_k(txt_k)
        q, k, v = torch.cat([txt_q, q], dim=1), torch.cat([txt_k, k], dim=1), torch.cat([txt_v, v], dim=1)
        out = rope_attention(q, k, v, rope, split)
        txt_out, img_out = out.split([txt.shape[1], img.shape[1]], dim=1)
        txt_out = self.to_add_out(txt_out)
        return self.to_out[0](img_out), txt_out


class DoubleStreamBlock(nn.Module):
    """Text and image keep their own weights and modulation; they meet only in the joint attention."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.attn = JointAttention(dim, num_heads, head_dim, eps)
        self.ff = FeedForward(dim, mlp_ratio)
        self.ff_context = FeedForward(dim, mlp_ratio)

    def forward(
        self,
        img: torch.Tensor,
        txt: torch.Tensor,
        mod_img: torch.Tensor,
        mod_txt: torch.Tensor,
        rope: Rope,
        split: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (text, image), the reference's order (compiled, the output order sets the graph's)."""
        (shift, scale, gate), (shift_ff, scale_ff, gate_ff) = split_modulation(mod_img, 2)
        (c_shift, c_scale, c_gate), (c_shift_ff, c_scale_ff, c_gate_ff) = split_modulation(mod_txt, 2)
        # The reference's operand order ((1 + scale) * x before attention, x * (1 + scale) before the MLPs):
        # the same numbers either way, and compiled the same graph as the reference's.
        img_attn, txt_attn = self.attn(
            (1 + scale) * layer_norm_no_affine(img, self.eps) + shift,
            (1 + c_scale) * layer_norm_no_affine(txt, self.eps) + c_shift,
            rope,
            split,
        )
        img = img + gate * img_attn
        img = img + gate_ff * self.ff(modulate(layer_norm_no_affine(img, self.eps), shift_ff, scale_ff))
        txt = txt + c_gate * txt_attn
        txt = txt + c_gate_ff * self.ff_context(
            modulate(layer_norm_no_affine(txt, self.eps), c_shift_ff, c_scale_ff)
        )
        if txt.dtype == torch.float16:
            txt = txt.clip(-65504, 65504)  # as the reference: keep fp16 text stream finite
        return txt, img


class ParallelSelfAttention(nn.Module):
    """Single-stream block body: one fused input projection feeds attention and the MLP in parallel."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.inner = num_heads * head_dim
        self.mlp_hidden = int(dim * mlp_ratio)
        self.to_qkv_mlp_proj = nn.Linear(dim, 3 * self.inner + 2 * self.mlp_hidden, bias=False)
        self.norm_q, self.norm_k = QKNorm(head_dim, eps), QKNorm(head_dim, eps)
        self.to_out = nn.Linear(self.inner + self.mlp_hidden, dim, bias=False)

    def forward(self, x: torch.Tensor, rope: Rope, split: Any = None) -> torch.Tensor:
        qkv, mlp = self.to_qkv_mlp_proj(x).split([3 * self.inner, 2 * self.mlp_hidden], dim=-1)
        q, k, v = (heads(t, self.head_dim) for t in qkv.chunk(3, dim=-1))
        out = rope_attention(self.norm_q(q), self.norm_k(k), v, rope, split)
        return self.to_out(torch.cat([out, swiglu(mlp)], dim=-1))


class SingleStreamBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.attn = ParallelSelfAttention(dim, num_heads, head_dim, mlp_ratio, eps)

    def forward(self, x: torch.Tensor, mod: torch.Tensor, rope: Rope, split: Any = None) -> torch.Tensor:
        ((shift, scale, gate),) = split_modulation(mod, 1)
        x = x + gate * self.attn((1 + scale) * layer_norm_no_affine(x, self.eps) + shift, rope, split)
        if x.dtype == torch.float16:
            x = x.clip(-65504, 65504)
        return x


@dataclass(frozen=True)
class Flux2BlockInputs:
    """What the blocks of one forward read besides the streams, computed once per forward from the timestep:
    the modulation vectors of each kind of block, and the RoPE table over [text, image] tokens."""

    mod_img: torch.Tensor  # [B, 6 * dim]: the double-stream blocks' image AdaLN sites
    mod_txt: torch.Tensor  # [B, 6 * dim]: ... their text sites
    mod_single: torch.Tensor  # [B, 3 * dim]: the single-stream blocks'
    rope: Rope
    sequence: Any = None  # the sequence-parallel layout of this rank's tokens (parallel/sequence.py), or None


IMAGE, TEXT = ("image",), ("text",)
JOINT = ("text", "image")  # the joint attention's order, and the joined stream's
# Sequence parallelism (parallel/plan.py): the streams are (image, text), joined as [text, image] before the
# first single-stream block (each rank joins its own shards: its [text, image] tokens); the RoPE table runs
# along [text, image].
SEQUENCE_PLAN = SequencePlan(
    streams=(IMAGE, TEXT), inputs={"rope": Tokens(JOINT, 0)}, attentions=((JOINT, JOINT),)
)


def run_double(block: DoubleStreamBlock, inputs: Flux2BlockInputs, streams: Streams) -> Streams:
    """(image, text) -> (image, text) through one double-stream block (which returns text first)."""
    img, txt = streams
    split = attention_split(inputs.sequence, JOINT, JOINT)
    txt, img = block(img, txt, inputs.mod_img, inputs.mod_txt, inputs.rope, split)
    return img, txt


def join_text_image(streams: Streams) -> Streams:
    """(image, text) -> ([text, image],): the single-stream blocks' one sequence, text first."""
    img, txt = streams
    return (torch.cat([txt, img], dim=1),)


def run_single(block: SingleStreamBlock, inputs: Flux2BlockInputs, streams: Streams) -> Streams:
    (joined,) = streams
    return (block(joined, inputs.mod_single, inputs.rope, attention_split(inputs.sequence, JOINT, JOINT)),)


def block_plan(
    double: Iterable[DoubleStreamBlock], single: Iterable[SingleStreamBlock], inputs: Flux2BlockInputs
) -> BlockPlan:
    """The blocks of one forward: double-stream on (image, text), the join, single-stream on (joined,); with
    its sequence declaration (SEQUENCE_PLAN, the join included)."""
    double, single = list(double), list(single)
    joined_at = len(double)

    def build(block_inputs: Flux2BlockInputs) -> BlockPlan:
        calls = [BlockCall(block, partial(run_double, block, block_inputs)) for block in double]
        calls += [BlockCall(block, partial(run_single, block, block_inputs)) for block in single]
        return BlockPlan(calls, transitions={joined_at: join_text_image})

    return replace(build(inputs), sequence=SequenceSplit(sequence_plan(joined_at), inputs, build))


@functools.cache
def sequence_plan(joined_at: int) -> SequencePlan:
    """SEQUENCE_PLAN with the join before block `joined_at` (one object per depth)."""
    return replace(SEQUENCE_PLAN, transitions={joined_at: (JOINT,)})
