"""One LTX-2 / LTX-2.3 audio+video transformer block.

Per block and per modality: self-attention, text cross-attention, audio<->video cross-attention and a
feed-forward, each behind an RMS norm with AdaLN modulation. Parameter names follow diffusers'
LTX2VideoTransformerBlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ditto.layers.mlp import GeluFeedForward
from ditto.layers.modulation import table_modulation
from ditto.layers.norm import RMSNorm, modulate
from ditto.models.ltx2.attention import LTX2Attention, Rope
from ditto.models.ltx2.stg import NO_PERTURB, BlockPerturb, StreamTap
from ditto.parallel.plan import SequencePlan, Tokens, attention_split

# One block's text keys and values: video k, v, audio k, v.
BlockKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

VIDEO, AUDIO, TEXT = ("video",), ("audio",), ("text",)
_PER_VIDEO_TOKEN = ("video_temb", "video_ca_temb", "video_ca_gate_temb", "video_rope", "video_ca_rope")
_PER_AUDIO_TOKEN = ("audio_temb", "audio_ca_temb", "audio_ca_gate_temb", "audio_rope", "audio_ca_rope")
# Sequence parallelism (parallel/plan.py): the streams are (video, audio); these block inputs run along their
# tokens (the AdaLN embeddings only when timesteps are per token, with image conditioning; otherwise their
# token axis has size 1 and they stay whole). The text is only ever keys and values: whole on every rank.
# The self-attention keyframe mask covers the whole video sequence, as the attention split wants it.
SEQUENCE_PLAN = SequencePlan(
    streams=(VIDEO, AUDIO),
    inputs={
        **{name: Tokens(VIDEO, 1) for name in _PER_VIDEO_TOKEN},
        **{name: Tokens(AUDIO, 1) for name in _PER_AUDIO_TOKEN},
    },
    attentions=((VIDEO, VIDEO), (AUDIO, AUDIO), (VIDEO, TEXT), (AUDIO, TEXT), (VIDEO, AUDIO), (AUDIO, VIDEO)),
)


@dataclass
class LTX2BlockInputs:
    """Everything a block needs besides the two hidden streams; built once per forward."""

    video_context: torch.Tensor
    audio_context: torch.Tensor
    video_context_mask: torch.Tensor | None
    audio_context_mask: torch.Tensor | None
    video_temb: torch.Tensor  # [B, T, n * D] global AdaLN embedding
    audio_temb: torch.Tensor
    video_ca_temb: torch.Tensor  # [B, T, 4 * D] audio<->video scale/shift embedding
    audio_ca_temb: torch.Tensor
    video_ca_gate_temb: torch.Tensor  # [B, T, D] a2v gate embedding
    audio_ca_gate_temb: torch.Tensor
    video_prompt_temb: torch.Tensor | None  # LTX-2.3 text K/V modulation (None: static table only)
    audio_prompt_temb: torch.Tensor | None
    video_rope: Rope
    audio_rope: Rope
    video_ca_rope: Rope
    audio_ca_rope: Rope
    video_self_mask: torch.Tensor | None = None
    cross_modal: bool = True  # False = isolate_modalities (no audio<->video attention)
    video_to_audio: bool = True  # False = skip_v2a_cross_attn (the audio stream does not read the video)
    sequence: Any = None  # the sequence-parallel layout of this rank's tokens (parallel/sequence.py), or None


@dataclass(frozen=True)
class LTX2PassInputs:
    """What `LTX2Transformer.run_blocks` binds into the block calls of one forward besides the streams."""

    blocks: LTX2BlockInputs  # shared by every block
    perturbs: Sequence[BlockPerturb]  # per block: its (video, audio) STG perturbation
    prompts: tuple[torch.Tensor, torch.Tensor]  # the text tensors as given (the text K/V cache's key)
    tap: StreamTap | None = None  # record the streams entering this block (models/ltx2/stg.py)
    first: int = 0  # the block the streams enter at (a resumed pass starts after the shared prefix)


class LTX2Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        attention_head_dim: int,
        cross_attention_dim: int,
        audio_dim: int,
        audio_num_attention_heads: int,
        audio_attention_head_dim: int,
        audio_cross_attention_dim: int,
        video_gated_attn: bool = False,
        video_cross_attn_adaln: bool = False,
        audio_gated_attn: bool = False,
        audio_cross_attn_adaln: bool = False,
        attention_bias: bool = True,
        attention_out_bias: bool = True,
        eps: float = 1e-6,
        elementwise_affine: bool = False,
        rope_type: str = "interleaved",
        perturbed_attn: bool = False,
        ff_bias: bool = True,
        audio_ff_bias: bool = True,
    ) -> None:
        super().__init__()
        self.perturbed_attn = perturbed_attn
        self.video_cross_attn_adaln, self.audio_cross_attn_adaln = (
            video_cross_attn_adaln,
            audio_cross_attn_adaln,
        )
        self.cross_attn_adaln = video_cross_attn_adaln or audio_cross_attn_adaln

        def attn(q_dim: int, heads: int, head_dim: int, ctx_dim: int | None, gated: bool) -> LTX2Attention:
            return LTX2Attention(
                q_dim, heads, head_dim, ctx_dim, attention_bias, attention_out_bias, rope_type, gated
            )

        def norm(d: int) -> RMSNorm:
            return RMSNorm(d, eps=eps, elementwise_affine=elementwise_affine)

        v_heads, v_hd, a_heads, a_hd = (
            num_attention_heads,
            attention_head_dim,
            audio_num_attention_heads,
            audio_attention_head_dim,
        )
        self.norm1, self.attn1 = norm(dim), attn(dim, v_heads, v_hd, None, video_gated_attn)
        self.audio_norm1, self.audio_attn1 = (
            norm(audio_dim),
            attn(audio_dim, a_heads, a_hd, None, audio_gated_attn),
        )
        self.norm2 = norm(dim)
        self.attn2 = attn(dim, v_heads, v_hd, cross_attention_dim, video_gated_attn)
        self.audio_norm2 = norm(audio_dim)
        self.audio_attn2 = attn(audio_dim, a_heads, a_hd, audio_cross_attention_dim, audio_gated_attn)
        # Both audio<->video directions use the audio head layout.
        self.audio_to_video_norm = norm(dim)
        self.audio_to_video_attn = attn(dim, a_heads, a_hd, audio_dim, video_gated_attn)
        self.video_to_audio_norm = norm(audio_dim)
        self.video_to_audio_attn = attn(audio_dim, a_heads, a_hd, dim, audio_gated_attn)
        self.norm3, self.ff = norm(dim), GeluFeedForward(dim, bias=ff_bias)
        self.audio_norm3, self.audio_ff = norm(audio_dim), GeluFeedForward(audio_dim, bias=audio_ff_bias)

        # AdaLN tables (initialised like the reference; checkpoints overwrite them). Rows: shift/scale/gate
        # for self-attention and feed-forward, then shift/scale/gate of the text query when cross-attn AdaLN.
        self.scale_shift_table = nn.Parameter(torch.randn(9 if video_cross_attn_adaln else 6, dim) / dim**0.5)
        self.audio_scale_shift_table = nn.Parameter(
            torch.randn(9 if audio_cross_attn_adaln else 6, audio_dim) / audio_dim**0.5
        )
        if self.cross_attn_adaln:
            self.prompt_scale_shift_table = nn.Parameter(torch.randn(2, dim))
            self.audio_prompt_scale_shift_table = nn.Parameter(torch.randn(2, audio_dim))
        # Rows: a2v scale, a2v shift, v2a scale, v2a shift, gate.
        self.video_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.randn(5, dim))
        self.audio_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.randn(5, audio_dim))

    def forward(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        inputs: LTX2BlockInputs,
        perturb: BlockPerturb = NO_PERTURB,
        text_kv: BlockKV | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """perturb: STG of the (video, audio) self-attentions (see LTX2Attention.forward); ignored unless
        perturbed_attn. text_kv: this block's text keys/values (video k, v, audio k, v) from the loop's cache."""
        video_perturb, audio_perturb = perturb if self.perturbed_attn else NO_PERTURB
        v_mod = table_modulation(self.scale_shift_table, inputs.video_temb)
        a_mod = table_modulation(self.audio_scale_shift_table, inputs.audio_temb)

        layout = inputs.sequence
        h = modulate(self.norm1(video), v_mod[0], v_mod[1])
        out = self.attn1(
            h, mask=inputs.video_self_mask, q_rope=inputs.video_rope, perturb=video_perturb,
            split=attention_split(layout, VIDEO, VIDEO),
        )  # fmt: skip
        video = video + out * v_mod[2]
        h = modulate(self.audio_norm1(audio), a_mod[0], a_mod[1])
        out = self.audio_attn1(
            h, q_rope=inputs.audio_rope, perturb=audio_perturb, split=attention_split(layout, AUDIO, AUDIO)
        )
        audio = audio + out * a_mod[2]

        video, audio = self._text_cross_attention(video, audio, inputs, v_mod, a_mod, text_kv)
        if inputs.cross_modal:
            video, audio = self._audio_video_attention(video, audio, inputs)

        h = modulate(self.norm3(video), v_mod[3], v_mod[4])
        video = video + self.ff(h) * v_mod[5]
        h = modulate(self.audio_norm3(audio), a_mod[3], a_mod[4])
        audio = audio + self.audio_ff(h) * a_mod[5]
        return video, audio

    def _prompt_modulation(self, table: torch.Tensor, temb: torch.Tensor | None, like: torch.Tensor):
        if temb is not None:
            return table_modulation(table, temb)
        # No prompt AdaLN (KV-cacheable variant): the static per-layer table alone.
        return table.to(device=like.device, dtype=like.dtype)[None, None].unbind(dim=2)

    def text_kv(self, video_context: torch.Tensor, audio_context: torch.Tensor) -> BlockKV:
        """The text cross-attentions' keys and values (only valid without prompt AdaLN modulation)."""
        return (
            *self.attn2.project_context(video_context),
            *self.audio_attn2.project_context(audio_context),
        )

    def _text_cross_attention(self, video, audio, inputs: LTX2BlockInputs, v_mod, a_mod, text_kv=None):
        v_ctx, a_ctx = inputs.video_context, inputs.audio_context
        if self.cross_attn_adaln:
            shift, scale = self._prompt_modulation(
                self.prompt_scale_shift_table, inputs.video_prompt_temb, video
            )
            v_ctx = modulate(v_ctx, shift, scale)
            shift, scale = self._prompt_modulation(
                self.audio_prompt_scale_shift_table, inputs.audio_prompt_temb, audio
            )
            a_ctx = modulate(a_ctx, shift, scale)

        h = self.norm2(video)
        if self.video_cross_attn_adaln:
            h = modulate(h, v_mod[6], v_mod[7])
        out = self.attn2(
            h, v_ctx, mask=inputs.video_context_mask, kv=None if text_kv is None else text_kv[:2],
            split=attention_split(inputs.sequence, VIDEO, TEXT),
        )  # fmt: skip
        video = video + (out * v_mod[8] if self.video_cross_attn_adaln else out)

        h = self.audio_norm2(audio)
        if self.audio_cross_attn_adaln:
            h = modulate(h, a_mod[6], a_mod[7])
        out = self.audio_attn2(
            h, a_ctx, mask=inputs.audio_context_mask, kv=None if text_kv is None else text_kv[2:],
            split=attention_split(inputs.sequence, AUDIO, TEXT),
        )  # fmt: skip
        audio = audio + (out * a_mod[8] if self.audio_cross_attn_adaln else out)
        return video, audio

    def _audio_video_attention(self, video, audio, inputs: LTX2BlockInputs):
        v_norm = self.audio_to_video_norm(video)
        a_norm = self.video_to_audio_norm(audio)
        v_table, a_table = (
            self.video_a2v_cross_attn_scale_shift_table,
            self.audio_a2v_cross_attn_scale_shift_table,
        )
        v_a2v_scale, v_a2v_shift, v_v2a_scale, v_v2a_shift = table_modulation(
            v_table[:4], inputs.video_ca_temb
        )
        a_a2v_scale, a_a2v_shift, a_v2a_scale, a_v2a_shift = table_modulation(
            a_table[:4], inputs.audio_ca_temb
        )
        (a2v_gate,) = table_modulation(v_table[4:], inputs.video_ca_gate_temb)
        (v2a_gate,) = table_modulation(a_table[4:], inputs.audio_ca_gate_temb)

        # Audio -> video: video queries, audio keys/values (both from the pre-update streams).
        out = self.audio_to_video_attn(
            modulate(v_norm, v_a2v_shift, v_a2v_scale),
            modulate(a_norm, a_a2v_shift, a_a2v_scale),
            q_rope=inputs.video_ca_rope,
            k_rope=inputs.audio_ca_rope,
            split=attention_split(inputs.sequence, VIDEO, AUDIO),
        )
        new_video = video + a2v_gate * out
        if not inputs.video_to_audio:
            return new_video, audio
        # Video -> audio: audio queries, video keys/values.
        out = self.video_to_audio_attn(
            modulate(a_norm, a_v2a_shift, a_v2a_scale),
            modulate(v_norm, v_v2a_shift, v_v2a_scale),
            q_rope=inputs.audio_ca_rope,
            k_rope=inputs.video_ca_rope,
            split=attention_split(inputs.sequence, AUDIO, VIDEO),
        )
        return new_video, audio + v2a_gate * out
