"""ditto's native LTX-2 / LTX-2.3 audio+video transformer.

Constructor keys, state_dict keys and forward keywords equal diffusers'
LTX2VideoTransformer3DModel, so a diffusers checkpoint loads with strict=True and the pipelines call
it the same way. The forward is embed -> `run_blocks` (the block-loop contract, ditto.runtime) -> head, with
no host syncs. A sampling loop passes `ctx` (the pass's kinds, step and the loop's state); without it the
forward is diffusers' plain call (the parity tests make it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import torch
from torch import nn

from ditto.acceleration.compile import compile_blocks
from ditto.errors import InvalidParameter
from ditto.layers.embeddings import CaptionProjection
from ditto.layers.norm import modulate
from ditto.models.ltx2.attention import LTX2Attention
from ditto.models.ltx2.blocks import SEQUENCE_PLAN, LTX2Block, LTX2BlockInputs, LTX2PassInputs
from ditto.models.ltx2.config import capture, check_supported
from ditto.models.ltx2.embeddings import LTX2AdaLNSingle
from ditto.models.ltx2.rope import LTX2Rope
from ditto.models.ltx2.stg import NO_PERTURB, BlockPerturb, StreamTap, stg_plan, tapped
from ditto.models.ltx2.text_kv import TextKV, cached_text_kv
from ditto.parallel.plan import SequenceSplit
from ditto.runtime.block_loop import run_block_loop
from ditto.runtime.contract import BlockCall, BlockPlan, PassContext, Streams

# diffusers turns 0/1 text masks into this additive bias (not -inf: a fully masked row stays finite).
_MASK_BIAS = -10000.0


class LTX2Transformer(nn.Module):
    # FP8 (`acceleration.fp8`): the first block and the last five stay in bf16, as in ltx-core's
    # fp8-scaled-mm policy (its EXCLUDED_LAYER_SUBSTRINGS).
    fp8_keep_blocks = (1, 5)
    # Denoising loops record each pass as a CUDA graph on a GPU (acceleration/cuda_graph.py); set by
    # Engine's compile=True / cuda_graphs=True.
    cuda_graphs = False

    def __init__(
        self,
        in_channels: int = 128,
        out_channels: int | None = 128,
        patch_size: int = 1,
        patch_size_t: int = 1,
        num_attention_heads: int = 32,
        attention_head_dim: int = 128,
        cross_attention_dim: int = 4096,
        vae_scale_factors: tuple[int, int, int] = (8, 32, 32),
        pos_embed_max_pos: int = 20,
        base_height: int = 2048,
        base_width: int = 2048,
        gated_attn: bool = False,
        cross_attn_mod: bool = False,
        audio_in_channels: int = 128,
        audio_out_channels: int | None = 128,
        audio_patch_size: int = 1,
        audio_patch_size_t: int = 1,
        audio_num_attention_heads: int = 32,
        audio_attention_head_dim: int = 64,
        audio_cross_attention_dim: int = 2048,
        audio_scale_factor: int = 4,
        audio_pos_embed_max_pos: int = 20,
        audio_sampling_rate: int = 16000,
        audio_hop_length: int = 160,
        audio_gated_attn: bool = False,
        audio_cross_attn_mod: bool = False,
        num_layers: int = 48,
        activation_fn: str = "gelu-approximate",
        qk_norm: str = "rms_norm_across_heads",
        norm_elementwise_affine: bool = False,
        norm_eps: float = 1e-6,
        caption_channels: int = 3840,
        attention_bias: bool = True,
        attention_out_bias: bool = True,
        rope_theta: float = 10000.0,
        rope_double_precision: bool = True,
        causal_offset: int = 1,
        timestep_scale_multiplier: int = 1000,
        cross_attn_timestep_scale_multiplier: int = 1000,
        rope_type: str = "interleaved",
        use_prompt_embeddings: bool = True,
        perturbed_attn: bool = False,
        ff_bias: bool = True,
        audio_ff_bias: bool = True,
        use_prompt_adaln_single: bool = True,
        use_keyframes_abs_pos_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.config = capture(locals())
        check_supported(self.config)
        dim = num_attention_heads * attention_head_dim
        audio_dim = audio_num_attention_heads * audio_attention_head_dim
        self.inner_dim, self.audio_inner_dim = dim, audio_dim
        self.use_prompt_embeddings = use_prompt_embeddings
        self.use_keyframes_abs_pos_embedding = use_keyframes_abs_pos_embedding
        self.prompt_modulation = cross_attn_mod or audio_cross_attn_mod
        self.use_prompt_adaln = self.prompt_modulation and use_prompt_adaln_single
        self.ca_gate_timestep_factor = cross_attn_timestep_scale_multiplier / timestep_scale_multiplier
        # diffusers applies STG only when the config says perturbed_attn; set True to follow the official
        # code, which perturbs whatever the checkpoint (LTX-2.0 configs ship perturbed_attn=False).
        self.stg_enabled = perturbed_attn

        self.proj_in = nn.Linear(in_channels, dim)
        self.audio_proj_in = nn.Linear(audio_in_channels, audio_dim)
        if use_keyframes_abs_pos_embedding:
            self.keyframes_abs_pos_embedding = nn.Parameter(torch.zeros(1, dim))
        if use_prompt_embeddings:  # LTX-2.0: the caption projection lives here (LTX-2.3: in the connectors)
            self.caption_projection = CaptionProjection(caption_channels, dim)
            self.audio_caption_projection = CaptionProjection(caption_channels, audio_dim)
        self._build_conditioning(dim, audio_dim)
        self._build_ropes(dim, audio_dim)
        self.transformer_blocks = nn.ModuleList([self._make_block(dim, audio_dim) for _ in range(num_layers)])
        self.norm_out = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_channels or in_channels)
        self.audio_norm_out = nn.LayerNorm(audio_dim, eps=1e-6, elementwise_affine=False)
        self.audio_proj_out = nn.Linear(audio_dim, audio_out_channels or audio_in_channels)

    def _build_conditioning(self, dim: int, audio_dim: int) -> None:
        c = self.config
        self.time_embed = LTX2AdaLNSingle(dim, 9 if c.cross_attn_mod else 6)
        self.audio_time_embed = LTX2AdaLNSingle(audio_dim, 9 if c.audio_cross_attn_mod else 6)
        # Global audio<->video modulation (scale/shift for a2v and v2a, and each direction's gate).
        self.av_cross_attn_video_scale_shift = LTX2AdaLNSingle(dim, 4)
        self.av_cross_attn_audio_scale_shift = LTX2AdaLNSingle(audio_dim, 4)
        self.av_cross_attn_video_a2v_gate = LTX2AdaLNSingle(dim, 1)
        self.av_cross_attn_audio_v2a_gate = LTX2AdaLNSingle(audio_dim, 1)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.audio_scale_shift_table = nn.Parameter(torch.randn(2, audio_dim) / audio_dim**0.5)
        if self.use_prompt_adaln:  # LTX-2.3: sigma-dependent modulation of the text keys/values
            self.prompt_adaln = LTX2AdaLNSingle(dim, 2)
            self.audio_prompt_adaln = LTX2AdaLNSingle(audio_dim, 2)

    def _build_ropes(self, dim: int, audio_dim: int) -> None:
        c = self.config
        common = dict(
            theta=c.rope_theta,
            causal_offset=c.causal_offset,
            rope_type=c.rope_type,
            double_precision=c.rope_double_precision,
        )
        video_patch = dict(patch_size=c.patch_size, patch_size_t=c.patch_size_t)
        audio_patch = dict(patch_size=c.audio_patch_size, patch_size_t=c.audio_patch_size_t)
        video_extent = dict(base_height=c.base_height, base_width=c.base_width)
        audio_rate = dict(sampling_rate=c.audio_sampling_rate, hop_length=c.audio_hop_length)
        self.rope = LTX2Rope(
            dim, "video", **video_patch, **video_extent, base_num_frames=c.pos_embed_max_pos,
            scale_factors=c.vae_scale_factors, num_heads=c.num_attention_heads, **common,
        )  # fmt: skip
        self.audio_rope = LTX2Rope(
            audio_dim, "audio", **audio_patch, **audio_rate, base_num_frames=c.audio_pos_embed_max_pos,
            scale_factors=(c.audio_scale_factor,), num_heads=c.audio_num_attention_heads, **common,
        )  # fmt: skip
        # audio<->video cross-attention: time axis only, over the longer of the two base extents. Both sides
        # are fed the forward's coordinates (the audio ones built with the audio scale factor); the audio
        # scale factor is also set here so coordinates prepared from this rope would be right too.
        ca_frames = max(c.pos_embed_max_pos, c.audio_pos_embed_max_pos)
        ca_dim = c.audio_cross_attention_dim
        self.cross_attn_rope = LTX2Rope(
            ca_dim, "video", **video_patch, **video_extent, base_num_frames=ca_frames,
            num_heads=c.num_attention_heads, **common,
        )  # fmt: skip
        self.cross_attn_audio_rope = LTX2Rope(
            ca_dim, "audio", **audio_patch, **audio_rate, base_num_frames=ca_frames,
            scale_factors=(c.audio_scale_factor,), num_heads=c.audio_num_attention_heads, **common,
        )  # fmt: skip

    def _make_block(self, dim: int, audio_dim: int) -> LTX2Block:
        c = self.config
        return LTX2Block(
            dim=dim, num_attention_heads=c.num_attention_heads, attention_head_dim=c.attention_head_dim,
            cross_attention_dim=c.cross_attention_dim, audio_dim=audio_dim,
            audio_num_attention_heads=c.audio_num_attention_heads,
            audio_attention_head_dim=c.audio_attention_head_dim,
            audio_cross_attention_dim=c.audio_cross_attention_dim, video_gated_attn=c.gated_attn,
            video_cross_attn_adaln=c.cross_attn_mod, audio_gated_attn=c.audio_gated_attn,
            audio_cross_attn_adaln=c.audio_cross_attn_mod, attention_bias=c.attention_bias,
            attention_out_bias=c.attention_out_bias, eps=c.norm_eps, elementwise_affine=c.norm_elementwise_affine,
            rope_type=c.rope_type, perturbed_attn=True, ff_bias=c.ff_bias, audio_ff_bias=c.audio_ff_bias,
        )  # fmt: skip

    def forward(
        self,
        hidden_states: torch.Tensor,
        audio_hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        audio_encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        audio_timestep: torch.Tensor | None = None,
        sigma: torch.Tensor | None = None,
        audio_sigma: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        audio_encoder_attention_mask: torch.Tensor | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: float = 24.0,
        audio_num_frames: int | None = None,
        video_coords: torch.Tensor | None = None,
        audio_coords: torch.Tensor | None = None,
        isolate_modalities: bool = False,
        spatio_temporal_guidance_blocks: list[int] | None = None,
        perturbation_mask: torch.Tensor | None = None,
        use_cross_timestep: bool = False,
        attention_kwargs: dict[str, Any] | None = None,
        video_self_attention_mask: torch.Tensor | None = None,
        video_keyframes_mask: torch.Tensor | None = None,
        return_dict: bool = False,
        *,
        ctx: PassContext | None = None,
        video_stg_blocks: Sequence[int] = (),
        audio_stg_blocks: Sequence[int] = (),
        skip_v2a_cross_attn: bool = False,
        tap: StreamTap | None = None,
        resume: StreamTap | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity-style outputs (video [B, Tv, out], audio [B, Ta, audio_out]) for patchified inputs.

        timestep/audio_timestep are sigma * timestep_scale_multiplier, shape [B] or [B, tokens]; sigma
        and audio_sigma ([B]) feed the LTX-2.3 prompt modulation and use_cross_timestep.
        ctx: the sampling loop's pass (see `run_blocks`); None for a plain call outside any loop.
        attention_kwargs and return_dict are accepted for call compatibility and ignored.

        ditto's keywords (models/ltx2/stg.py): `spatio_temporal_guidance_blocks` (diffusers') perturbs both
        self-attentions there; `video_stg_blocks` / `audio_stg_blocks` one modality's each (the official
        guider's perturbed pass). `skip_v2a_cross_attn`: no video-to-audio cross-attention in any block (the
        audio stream does not read the video). `tap`: record the streams entering block `tap.block`;
        `resume`: start at block `resume.block` from its streams (`hidden_states` then only gives the batch).
        """
        batch = hidden_states.shape[0]
        audio_timestep = timestep if audio_timestep is None else audio_timestep
        audio_sigma = sigma if audio_sigma is None else audio_sigma
        if video_coords is None:
            video_coords = self.rope.prepare_video_coords(
                batch, num_frames, height, width, hidden_states.device, fps=fps
            )
        if audio_coords is None:
            audio_coords = self.audio_rope.prepare_audio_coords(
                batch, audio_num_frames, audio_hidden_states.device
            )

        inputs, video_emb, audio_emb = self._embed_conditions(
            batch, hidden_states.dtype, audio_hidden_states.dtype, timestep, audio_timestep, sigma, audio_sigma,
            use_cross_timestep,
        )  # fmt: skip
        inputs.video_context, inputs.audio_context = self._project_prompts(
            encoder_hidden_states, audio_encoder_hidden_states
        )
        inputs.video_context_mask = _text_bias(encoder_attention_mask, hidden_states.dtype)
        inputs.audio_context_mask = _text_bias(audio_encoder_attention_mask, audio_hidden_states.dtype)
        if video_self_attention_mask is not None:
            keep = video_self_attention_mask.to(hidden_states.dtype)
            inputs.video_self_mask = ((1 - keep) * _MASK_BIAS).unsqueeze(1)
        inputs.video_rope, inputs.audio_rope = self.rope(video_coords), self.audio_rope(audio_coords)
        inputs.video_ca_rope = self.cross_attn_rope(video_coords[:, 0:1])
        inputs.audio_ca_rope = self.cross_attn_audio_rope(audio_coords[:, 0:1])
        inputs.cross_modal = not isolate_modalities
        inputs.video_to_audio = not skip_v2a_cross_attn

        if resume is None:
            streams = self._embed_latents(hidden_states, audio_hidden_states, video_keyframes_mask)
        else:
            streams = resume.streams
        both = spatio_temporal_guidance_blocks or ()
        pass_inputs = LTX2PassInputs(
            blocks=inputs,
            perturbs=self._stg_plan(
                (*both, *video_stg_blocks), (*both, *audio_stg_blocks), perturbation_mask
            ),
            prompts=(encoder_hidden_states, audio_encoder_hidden_states),
            tap=tap,
            first=0 if resume is None else resume.block,
        )
        video, audio = self.run_blocks(streams, pass_inputs, ctx)
        return self._head(video, audio, video_emb, audio_emb)

    def _embed_latents(
        self, video: torch.Tensor, audio: torch.Tensor, keyframes_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        video, audio = self.proj_in(video), self.audio_proj_in(audio)
        if self.use_keyframes_abs_pos_embedding and keyframes_mask is not None:
            marker = (keyframes_mask > 0).to(video.dtype)
            video = video + marker * self.keyframes_abs_pos_embedding.to(video.dtype)
        return video, audio

    def run_blocks(self, streams: Streams, inputs: LTX2PassInputs, ctx: PassContext | None) -> Streams:
        """The block loop (ditto.runtime's contract): streams (video, audio) through every block.

        Each block's call binds this forward's shared inputs, the block's STG perturbation and its text
        keys/values. Those come from the loop's `LoopState` (computed once per prompt tensor, block and loop, never
        without a loop, never for LTX-2.3: models/ltx2/text_kv.py). The loop's features (step cache,
        offload, sequence parallelism) wrap the plan's run and see which passes `ctx.kinds` computes; the plan
        declares its sequences (blocks.SEQUENCE_PLAN) and how to rebind the calls to sharded block inputs.
        A tapping pass records the streams entering the tap's block; a resumed pass's plan holds only the
        blocks from `inputs.first` on (`BlockPlan.first` names it), its streams being those of that block.
        """
        text_kv = self._text_kv(inputs, ctx)
        build = partial(self._block_plan, inputs, text_kv)
        plan = replace(build(inputs.blocks), sequence=SequenceSplit(SEQUENCE_PLAN, inputs.blocks, build))
        return run_block_loop(plan, streams, ctx)

    def _block_plan(
        self, inputs: LTX2PassInputs, text_kv: TextKV | None, blocks: LTX2BlockInputs
    ) -> BlockPlan:
        """The calls from `inputs.first` on, bound to `blocks` (this forward's block inputs, or a rank's
        sharded copy of them: parallel/loop.py rebuilds the plan with those)."""
        calls = [
            BlockCall(block, partial(_run_block, block, blocks, perturb, text_kv, index))
            for index, (block, perturb) in enumerate(
                zip(self.transformer_blocks, inputs.perturbs, strict=True)
            )
        ]
        if inputs.tap is not None:
            calls[inputs.tap.block] = tapped(calls[inputs.tap.block], inputs.tap)
        return BlockPlan(calls[inputs.first :], first=inputs.first)

    def fuse_projections(self) -> LTX2Transformer:
        """Fuse each attention's Q/K/V (self-attention) or K/V (cross-attention) projections in place.

        Call after moving the model to its device and dtype. state_dict keys and values are unchanged.
        """
        for block in self.transformer_blocks:
            for name, module in block.named_children():
                if isinstance(module, LTX2Attention):
                    module.fuse_projections(self_attention=name in ("attn1", "audio_attn1"))
        return self

    def compile_blocks(self, mode: str | None = None) -> LTX2Transformer:
        """Regional torch.compile: one compiled graph serves all transformer blocks."""
        compile_blocks(self.transformer_blocks, mode=mode)
        return self

    def _text_kv(self, inputs: LTX2PassInputs, ctx: PassContext | None) -> TextKV | None:
        if ctx is None or self.config.cross_attn_mod or self.config.audio_cross_attn_mod:
            return None  # no loop to keep them in; LTX-2.3: the text is modulated per step
        video, audio = inputs.blocks.video_context, inputs.blocks.audio_context
        blocks = self.transformer_blocks
        return cached_text_kv(
            ctx.loop, inputs.prompts, len(blocks), lambda index: blocks[index].text_kv(video, audio)
        )

    def _stg_plan(
        self, video_blocks: Sequence[int], audio_blocks: Sequence[int], mask: torch.Tensor | None
    ) -> list[BlockPerturb]:
        """Per block: its (video, audio) self-attention perturbation (models/ltx2/stg.py); none at all
        when the config leaves STG off (diffusers' perturbed_attn=False) and the pipeline did not turn it on."""
        if not self.stg_enabled:
            return [NO_PERTURB] * len(self.transformer_blocks)
        return stg_plan(len(self.transformer_blocks), video_blocks, audio_blocks, mask)

    def _embed_conditions(
        self,
        batch,
        video_dtype,
        audio_dtype,
        timestep,
        audio_timestep,
        sigma,
        audio_sigma,
        use_cross_timestep,
    ) -> tuple[LTX2BlockInputs, torch.Tensor, torch.Tensor]:
        video_temb, video_emb = self.time_embed(timestep, batch, video_dtype)
        audio_temb, audio_emb = self.audio_time_embed(audio_timestep, batch, audio_dtype)
        video_prompt_temb = audio_prompt_temb = None
        if self.use_prompt_adaln or use_cross_timestep:
            _require(sigma, "sigma", "the LTX-2.3 prompt modulation and use_cross_timestep need it")
        if self.use_prompt_adaln:
            video_prompt_temb, _ = self.prompt_adaln(sigma, batch, video_dtype)
            audio_prompt_temb, _ = self.audio_prompt_adaln(audio_sigma, batch, audio_dtype)
        # Cross-modal modulation follows the other modality's sigma in LTX-2.3 (use_cross_timestep).
        video_ca_t = audio_sigma.flatten() if use_cross_timestep else timestep.flatten()
        audio_ca_t = sigma.flatten() if use_cross_timestep else audio_timestep.flatten()
        gate_factor = self.ca_gate_timestep_factor
        inputs = LTX2BlockInputs(
            video_context=None, audio_context=None, video_context_mask=None, audio_context_mask=None,
            video_temb=video_temb, audio_temb=audio_temb,
            video_ca_temb=self.av_cross_attn_video_scale_shift(video_ca_t, batch, video_dtype)[0],
            audio_ca_temb=self.av_cross_attn_audio_scale_shift(audio_ca_t, batch, audio_dtype)[0],
            video_ca_gate_temb=self.av_cross_attn_video_a2v_gate(video_ca_t * gate_factor, batch, video_dtype)[0],
            audio_ca_gate_temb=self.av_cross_attn_audio_v2a_gate(audio_ca_t * gate_factor, batch, audio_dtype)[0],
            video_prompt_temb=video_prompt_temb, audio_prompt_temb=audio_prompt_temb,
            video_rope=None, audio_rope=None, video_ca_rope=None, audio_ca_rope=None,
        )  # fmt: skip
        return inputs, video_emb, audio_emb

    def _project_prompts(
        self, video_text: torch.Tensor, audio_text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.use_prompt_embeddings:
            return video_text, audio_text
        return self.caption_projection(video_text), self.audio_caption_projection(audio_text)

    def _head(
        self, video: torch.Tensor, audio: torch.Tensor, video_emb: torch.Tensor, audio_emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shift, scale = (self.scale_shift_table + video_emb.unsqueeze(2)).unbind(dim=2)
        video_out = self.proj_out(modulate(self.norm_out(video), shift, scale))
        shift, scale = (self.audio_scale_shift_table + audio_emb.unsqueeze(2)).unbind(dim=2)
        audio_out = self.audio_proj_out(modulate(self.audio_norm_out(audio), shift, scale))
        return video_out, audio_out


def _run_block(
    block: LTX2Block,
    inputs: LTX2BlockInputs,
    perturb: BlockPerturb,
    text_kv: TextKV | None,
    index: int,
    streams: Streams,
) -> Streams:
    """One block's call; its text K/V (LTX-2.0 in a loop) are computed on its first call of the loop, while
    its weights are on the device."""
    video, audio = streams
    return block(video, audio, inputs, perturb, None if text_kv is None else text_kv(index))


def _text_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """[B, L] keep-mask (1 = token) -> additive bias [B, 1, 1, L]; 3-D masks are taken as biases already."""
    if mask is None:
        return None
    if mask.ndim == 2:
        return ((1 - mask.to(dtype)) * _MASK_BIAS)[:, None, None, :]
    return mask.unsqueeze(1) if mask.ndim == 3 else mask


def _require(value: Any, name: str, why: str) -> None:
    if value is None:
        raise InvalidParameter(name, None, "is missing", why)


__all__ = ["LTX2Transformer"]
