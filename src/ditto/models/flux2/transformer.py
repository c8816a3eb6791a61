"""Native FLUX.2 transformer (Klein and dev): embed -> double-stream blocks -> single-stream blocks -> head.

Constructor arguments are diffusers' `Flux2Transformer2DModel` config keys and parameter names are its
state_dict keys, so a diffusers `transformer/` folder loads strictly with no conversion.

The blocks run through the one block loop (`run_blocks`, runtime/block_loop.py): the double-stream blocks on
the streams (image, text), then a transition that joins them as [text, image], then the single-stream
blocks on (joined,).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ditto.errors import CheckpointError
from ditto.layers.embeddings import timestep_sinusoid
from ditto.layers.norm import layer_norm_no_affine
from ditto.layers.rope_nd import rope_cos_sin_nd
from ditto.models.flux2.blocks import (
    DoubleStreamBlock,
    Flux2BlockInputs,
    Modulation,
    Rope,
    SingleStreamBlock,
    block_plan,
)
from ditto.runtime.block_loop import run_block_loop
from ditto.runtime.contract import PassContext, Streams


class TimestepMLP(nn.Module):
    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim, bias=False)
        self.linear_2 = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TimestepGuidanceEmbed(nn.Module):
    """temb = MLP(sin features of t) [+ MLP(sin features of guidance) when the checkpoint has a guidance MLP]."""

    def __init__(self, channels: int, dim: int, guidance_embeds: bool) -> None:
        super().__init__()
        self.channels = channels
        self.timestep_embedder = TimestepMLP(channels, dim)
        self.guidance_embedder = TimestepMLP(channels, dim) if guidance_embeds else None

    def forward(self, timestep: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        temb = self.timestep_embedder(timestep_sinusoid(timestep, self.channels).to(timestep.dtype))
        if guidance is not None and self.guidance_embedder is not None:
            temb = temb + self.guidance_embedder(
                timestep_sinusoid(guidance, self.channels).to(guidance.dtype)
            )
        return temb


class OutputNorm(nn.Module):
    """AdaLN head (diffusers' AdaLayerNormContinuous without affine): scale first, then shift."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.linear = nn.Linear(dim, dim * 2, bias=False)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(F.silu(temb).to(x.dtype)).chunk(2, dim=1)
        return layer_norm_no_affine(x, self.eps) * (1 + scale)[:, None, :] + shift[:, None, :]


class Flux2Transformer(nn.Module):
    def __init__(
        self,
        patch_size: int = 1,
        in_channels: int = 128,
        out_channels: int | None = None,
        num_layers: int = 8,
        num_single_layers: int = 48,
        attention_head_dim: int = 128,
        num_attention_heads: int = 48,
        joint_attention_dim: int = 15360,
        timestep_guidance_channels: int = 256,
        mlp_ratio: float = 3.0,
        axes_dims_rope: tuple[int, ...] = (32, 32, 32, 32),
        rope_theta: int = 2000,
        eps: float = 1e-6,
        guidance_embeds: bool = True,
    ) -> None:
        super().__init__()
        if sum(axes_dims_rope) != attention_head_dim:
            raise CheckpointError(
                f"transformer config: axes_dims_rope={axes_dims_rope} must sum to "
                f"attention_head_dim={attention_head_dim}"
            )
        dim = num_attention_heads * attention_head_dim
        self.axes_dims_rope = tuple(axes_dims_rope)
        self.rope_theta = rope_theta
        self.out_channels = out_channels or in_channels
        self.time_guidance_embed = TimestepGuidanceEmbed(timestep_guidance_channels, dim, guidance_embeds)
        self.double_stream_modulation_img = Modulation(dim, sets=2)
        self.double_stream_modulation_txt = Modulation(dim, sets=2)
        self.single_stream_modulation = Modulation(dim, sets=1)
        self.x_embedder = nn.Linear(in_channels, dim, bias=False)
        self.context_embedder = nn.Linear(joint_attention_dim, dim, bias=False)
        block_args = (dim, num_attention_heads, attention_head_dim, mlp_ratio, eps)
        self.transformer_blocks = nn.ModuleList(DoubleStreamBlock(*block_args) for _ in range(num_layers))
        self.single_transformer_blocks = nn.ModuleList(
            SingleStreamBlock(*block_args) for _ in range(num_single_layers)
        )
        self.norm_out = OutputNorm(dim, eps)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * self.out_channels, bias=False)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Flux2Transformer:
        """Build from a diffusers config.json dict; bookkeeping keys ("_class_name", ...) are ignored."""
        return cls(**{key: value for key, value in config.items() if not key.startswith("_")})

    @property
    def guidance_embeds(self) -> bool:
        return self.time_guidance_embed.guidance_embedder is not None

    def rope(self, txt_ids: torch.Tensor, img_ids: torch.Tensor) -> Rope:
        """cos/sin for [text, image] tokens from [seq, 4] position ids (batch-shared, as the reference)."""
        ids = torch.cat([txt_ids, img_ids], dim=0)
        return rope_cos_sin_nd(ids, self.axes_dims_rope, self.rope_theta)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        img_ids: torch.Tensor | None = None,
        txt_ids: torch.Tensor | None = None,
        guidance: torch.Tensor | None = None,
        rope: Rope | None = None,
        ctx: PassContext | None = None,
    ) -> torch.Tensor:
        """Velocity for image tokens [B, S_img, C]. `timestep` (and `guidance`) in [0, 1] per sample.

        Pass `rope` (from `self.rope`) to reuse it across steps; otherwise `img_ids`/`txt_ids` ([S, 4] or
        [B, S, 4], of which the first sample is used, as the reference does) are turned into one here.
        `ctx` names the sampling loop's pass (None outside a loop: the blocks run plainly).
        """
        dtype = hidden_states.dtype
        temb = self.time_guidance_embed(
            timestep.to(dtype) * 1000, None if guidance is None else guidance.to(dtype) * 1000
        )
        if rope is None:
            rope = self.rope(
                txt_ids[0] if txt_ids.ndim == 3 else txt_ids, img_ids[0] if img_ids.ndim == 3 else img_ids
            )
        img = self.x_embedder(hidden_states)
        txt = self.context_embedder(encoder_hidden_states)
        streams = self.run_blocks((img, txt), self.block_inputs(temb, rope), ctx)
        return self.proj_out(self.norm_out(image_tokens(streams, txt.shape[1]), temb))

    def block_inputs(self, temb: torch.Tensor, rope: Rope) -> Flux2BlockInputs:
        """What every block of one forward reads besides the streams: its kind's modulation, the RoPE table."""
        return Flux2BlockInputs(
            mod_img=self.double_stream_modulation_img(temb),
            mod_txt=self.double_stream_modulation_txt(temb),
            mod_single=self.single_stream_modulation(temb),
            rope=rope,
        )

    def run_blocks(self, streams: Streams, inputs: Flux2BlockInputs, ctx: PassContext | None) -> Streams:
        """The one block loop: (image, text) through the double-stream blocks, joined as [text, image], then
        the single-stream blocks; returns (joined,) (or (image, text) for a model without single blocks)."""
        plan = block_plan(self.transformer_blocks, self.single_transformer_blocks, inputs)
        return run_block_loop(plan, streams, ctx)


def image_tokens(streams: Streams, num_txt: int) -> torch.Tensor:
    """The image tokens of the block loop's output: after the text in the joined stream."""
    if len(streams) == 2:  # no single-stream block: the streams were never joined
        return streams[0]
    return streams[0][:, num_txt:]
