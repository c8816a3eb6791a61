"""ditto's native LTX-2 / LTX-2.3 text connectors.

Gemma's stacked per-layer hidden states are normalised, projected, and refined by one small 1-D
transformer per modality (video, audio), whose padding slots are filled with learned registers.
Constructor keys, state_dict keys and outputs equal diffusers' LTX2TextConnectors.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ditto.layers.mlp import GeluFeedForward
from ditto.layers.rope import rope_tables
from ditto.models.ltx2.attention import LTX2Attention, Rope
from ditto.models.ltx2.config import capture

# Additive-mask values at or above this count as "keep" when registers replace padding.
_KEEP_THRESHOLD = -9000.0


class _ConnectorBlock(nn.Module):
    """Pre-norm self-attention (1-D RoPE) and GELU feed-forward; norms carry no weights."""

    def __init__(self, dim: int, heads: int, head_dim: int, rope_type: str, gated: bool) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn1 = LTX2Attention(dim, heads, head_dim, rope_type=rope_type, gated=gated)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6, elementwise_affine=False)
        self.ff = GeluFeedForward(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rope: Rope) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), mask=mask, q_rope=rope)
        return x + self.ff(self.norm2(x))


class LTX2ConnectorTransformer(nn.Module):
    """The 1-D transformer of one modality (diffusers' LTX2ConnectorTransformer1d)."""

    def __init__(
        self,
        num_attention_heads: int,
        attention_head_dim: int,
        num_layers: int,
        num_learnable_registers: int | None,
        rope_base_seq_len: int,
        rope_theta: float,
        rope_double_precision: bool,
        rope_type: str,
        gated_attention: bool,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        self.dim, self.num_heads, self.rope_type = dim, num_attention_heads, rope_type
        self.rope_base_seq_len, self.rope_theta = rope_base_seq_len, rope_theta
        self.rope_double_precision = rope_double_precision
        self.learnable_registers = None
        if num_learnable_registers is not None:
            self.learnable_registers = nn.Parameter(torch.rand(num_learnable_registers, dim) * 2.0 - 1.0)
        self.transformer_blocks = nn.ModuleList(
            [
                _ConnectorBlock(dim, num_attention_heads, attention_head_dim, rope_type, gated_attention)
                for _ in range(num_layers)
            ]
        )
        self.norm_out = nn.RMSNorm(dim, eps=eps, elementwise_affine=False)
        self._rope_cache: dict[tuple, Rope] = {}

    def rope(self, batch: int, length: int, device: torch.device) -> Rope:
        """1-D tables over positions 0..length-1 as fractions of rope_base_seq_len; cached per shape."""
        key = (batch, length, device)
        tables = self._rope_cache.get(key)
        if tables is None:
            positions = torch.arange(length, dtype=torch.float32, device=device) / self.rope_base_seq_len
            fractions = positions[None, :, None].expand(batch, -1, -1)
            tables = rope_tables(
                fractions,
                self.dim,
                self.rope_theta,
                self.rope_type,
                self.num_heads,
                self.rope_double_precision,
            )
            self._rope_cache = {key: tables}  # one entry: the text length is fixed within a run
        return tables

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [B, L, dim]; mask: additive [B, 1, 1, L] (0 keep, very negative drop) or None.

        Returns the refined sequence and the mask its attention used (all zeros with registers).
        """
        batch, length, _ = x.shape
        attn_mask = mask
        if self.learnable_registers is not None:
            x = self._fill_with_registers(x, mask)
            mask = torch.zeros_like(mask)
            attn_mask = None  # an all-zero additive mask is no mask
        rope = self.rope(batch, length, x.device)
        for block in self.transformer_blocks:
            x = block(x, attn_mask, rope)
        return self.norm_out(x), mask

    def _fill_with_registers(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Move valid tokens to the front (order kept); positions after them take the registers
        tiled over the sequence, indexed by absolute position (as the official connector does)."""
        batch, length, dim = x.shape
        count = self.learnable_registers.shape[0]
        if length % count != 0:
            raise ValueError(f"text length {length} must be a multiple of the {count} learnable registers")
        keep = (mask >= _KEEP_THRESHOLD).reshape(batch, length)
        # Stable sort on "is padding" puts kept tokens first without reordering them.
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
        front = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, dim))
        filled = torch.arange(length, device=x.device)[None, :] < keep.sum(dim=1, keepdim=True)
        registers = self.learnable_registers.repeat(length // count, 1).to(x.dtype)
        return torch.where(filled.unsqueeze(-1), front, registers.unsqueeze(0))


def _masked_mean_range_norm(
    states: torch.Tensor, lengths: torch.Tensor, padding_side: str, scale: float, eps: float = 1e-6
) -> torch.Tensor:
    """LTX-2.0 feature norm: per sample and layer, (x - masked mean) / (masked max - min) * scale.

    states: [B, L, C, layers]; the valid tokens are the last (left padding) or first `lengths` ones.
    Returns [B, L, C * layers] with padded positions zeroed.
    """
    batch, length, channels, _ = states.shape
    index = torch.arange(length, device=states.device)[None, :]
    if padding_side == "left":
        valid = index >= length - lengths[:, None]
    elif padding_side == "right":
        valid = index < lengths[:, None]
    else:
        raise ValueError(f"padding_side={padding_side!r} is not supported; use 'left' or 'right'")
    valid = valid[:, :, None, None]
    total = (states.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True)) / (
        (lengths * channels).view(batch, 1, 1, 1) + eps
    )
    low = states.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    high = states.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normed = (states - total) / (high - low + eps) * scale
    normed = normed.flatten(2).masked_fill(~valid[..., 0], 0.0)
    return normed.to(states.dtype)


def _per_token_rms(states: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LTX-2.3 feature norm: RMS over the channel axis of [B, L, C, layers], in the input dtype."""
    return states * torch.rsqrt(torch.mean(states**2, dim=2, keepdim=True) + eps)


class LTX2TextConnectors(nn.Module):
    """Text features -> (video prompt embeddings, audio prompt embeddings, keep-mask).

    LTX-2.0 layout: masked mean/range norm, one shared projection to caption_channels (the transformer
    then projects per modality). LTX-2.3 layout (per_modality_projections): per-token RMS norm and one
    projection per modality straight to the transformer's cross-attention widths.
    """

    def __init__(
        self,
        caption_channels: int = 3840,
        text_proj_in_factor: int = 49,
        video_connector_num_attention_heads: int = 30,
        video_connector_attention_head_dim: int = 128,
        video_connector_num_layers: int = 2,
        video_connector_num_learnable_registers: int | None = 128,
        video_gated_attn: bool = False,
        audio_connector_num_attention_heads: int = 30,
        audio_connector_attention_head_dim: int = 128,
        audio_connector_num_layers: int = 2,
        audio_connector_num_learnable_registers: int | None = 128,
        audio_gated_attn: bool = False,
        connector_rope_base_seq_len: int = 4096,
        rope_theta: float = 10000.0,
        rope_double_precision: bool = True,
        causal_temporal_positioning: bool = False,
        rope_type: str = "interleaved",
        per_modality_projections: bool = False,
        video_hidden_dim: int = 4096,
        audio_hidden_dim: int = 2048,
        proj_bias: bool = False,
    ) -> None:
        super().__init__()
        self.config = capture(locals())
        # causal_temporal_positioning is a config key the reference stores but never reads.
        self.caption_channels = caption_channels
        self.per_modality_projections = per_modality_projections
        self.video_hidden_dim, self.audio_hidden_dim = video_hidden_dim, audio_hidden_dim
        features = caption_channels * text_proj_in_factor
        if per_modality_projections:
            self.video_text_proj_in = nn.Linear(features, video_hidden_dim, bias=proj_bias)
            self.audio_text_proj_in = nn.Linear(features, audio_hidden_dim, bias=proj_bias)
        else:
            self.text_proj_in = nn.Linear(features, caption_channels, bias=proj_bias)
        shared = dict(
            rope_base_seq_len=connector_rope_base_seq_len,
            rope_theta=rope_theta,
            rope_double_precision=rope_double_precision,
            rope_type=rope_type,
        )
        self.video_connector = LTX2ConnectorTransformer(
            video_connector_num_attention_heads,
            video_connector_attention_head_dim,
            video_connector_num_layers,
            video_connector_num_learnable_registers,
            gated_attention=video_gated_attn,
            **shared,
        )
        self.audio_connector = LTX2ConnectorTransformer(
            audio_connector_num_attention_heads,
            audio_connector_attention_head_dim,
            audio_connector_num_layers,
            audio_connector_num_learnable_registers,
            gated_attention=audio_gated_attn,
            **shared,
        )

    def forward(
        self,
        text_encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        padding_side: str = "left",
        scale_factor: int = 8,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """text_encoder_hidden_states: [B, L, C, layers] or [B, L, C * layers]; attention_mask: [B, L] 0/1.

        Returns (video embeddings [B, L, Dv], audio embeddings [B, L, Da], int64 keep-mask [B, L]).
        padding_side and scale_factor matter for the LTX-2.0 layout only.
        """
        states = text_encoder_hidden_states
        if states.ndim == 3:
            states = states.unflatten(2, (self.caption_channels, -1))
        if self.per_modality_projections:
            video_in, audio_in = self._project_per_modality(states, attention_mask)
        else:
            normed = _masked_mean_range_norm(states, attention_mask.sum(dim=-1), padding_side, scale_factor)
            video_in = audio_in = self.text_proj_in(normed)

        dtype = video_in.dtype
        # 0/1 keep-mask -> additive mask: 0 to keep, -finfo.max to drop.
        additive = (attention_mask.to(torch.int64) - 1).to(dtype)[:, None, None, :] * torch.finfo(dtype).max
        video, video_mask = self.video_connector(video_in, additive)
        # As in the reference: positions whose connector mask is (near) zero are kept; with registers the
        # mask is all zeros, so every position (padding slots now hold registers) is kept.
        keep = (video_mask < 1e-6).to(torch.int64).reshape(video.shape[0], video.shape[1], 1)
        video = video * keep
        audio, _ = self.audio_connector(audio_in, additive)
        return video, audio, keep.squeeze(-1)

    def _project_per_modality(
        self, states: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        normed = _per_token_rms(states).flatten(2, 3)
        normed = torch.where(attention_mask.bool().unsqueeze(-1), normed, torch.zeros_like(normed))
        # Rescale so the feature norm suits each modality's width before its projection.
        video = normed * math.sqrt(self.video_hidden_dim / self.caption_channels)
        audio = normed * math.sqrt(self.audio_hidden_dim / self.caption_channels)
        return self.video_text_proj_in(video), self.audio_text_proj_in(audio)
