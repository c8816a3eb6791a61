"""Native Qwen-Image MMDiT: embed -> dual-stream blocks (one loop) -> AdaLN head.

Constructor arguments are diffusers' `QwenImageTransformer2DModel` config keys and parameter names are its
state_dict keys, so a diffusers `transformer/` folder loads strictly with no conversion.

The blocks run through the one block loop (`run_blocks`, runtime/block_loop.py) on the streams (image, text),
with no transition: every block is dual-stream.
"""

from __future__ import annotations

import math
from math import prod

import torch
import torch.nn.functional as F
from torch import nn

from ditto.errors import CheckpointError
from ditto.layers.embeddings import TimestepMLP
from ditto.layers.norm import StepwiseRMSNorm, layer_norm_no_affine
from ditto.models.qwen_image.blocks import QwenImageBlock, QwenImageBlockInputs, block_plan
from ditto.models.qwen_image.rope import ImageShape, Rope, qwen_rope
from ditto.runtime.block_loop import run_block_loop
from ditto.runtime.contract import PassContext, Streams

ROPE_THETA = 10000


def timestep_features(timestep: torch.Tensor, dim: int = 256, scale: float = 1000.0) -> torch.Tensor:
    """[cos | sin] features of `scale * (t * freqs)`, float32.

    Not `layers.embeddings.timestep_sinusoid(t * 1000)`: the reference scales after the product, and the
    other rounding order moves the features by an ulp, which the blocks then amplify.
    """
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=timestep.device)
    freqs = torch.exp(exponent / half)
    angles = scale * (timestep[:, None].float() * freqs[None, :])
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TimestepEmbed(nn.Module):
    """diffusers' QwenTimestepProjEmbeddings: 256 sinusoid features of 1000*t -> MLP (+ a layer-flag embedding)."""

    def __init__(self, dim: int, use_additional_t_cond: bool) -> None:
        super().__init__()
        self.timestep_embedder = TimestepMLP(256, dim)
        self.addition_t_embedding = nn.Embedding(2, dim) if use_additional_t_cond else None

    def forward(
        self, timestep: torch.Tensor, dtype: torch.dtype, addition: torch.Tensor | None
    ) -> torch.Tensor:
        temb = self.timestep_embedder(timestep_features(timestep, 256, scale=1000).to(dtype))
        if self.addition_t_embedding is not None:
            if addition is None:
                raise ValueError("this checkpoint (use_additional_t_cond) needs `additional_t_cond`")
            temb = temb + self.addition_t_embedding(addition).to(dtype)
        return temb


class OutputNorm(nn.Module):
    """AdaLayerNormContinuous without affine, linear with bias: scale first, then shift."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.linear = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(F.silu(temb).to(x.dtype)).chunk(2, dim=1)
        return layer_norm_no_affine(x, self.eps) * (1 + scale)[:, None, :] + shift[:, None, :]


def joint_mask(text_mask: torch.Tensor | None, image_tokens: int) -> torch.Tensor | None:
    """Keep-mask [B, 1, 1, S_txt + S_img] over the joint sequence (text first); None when all text is valid."""
    if text_mask is None:
        return None
    keep = text_mask.to(torch.bool)
    image = keep.new_ones(keep.shape[0], image_tokens)
    return torch.cat([keep, image], dim=1)[:, None, None, :]


class QwenImageTransformer(nn.Module):
    def __init__(
        self,
        patch_size: int = 2,
        in_channels: int = 64,
        out_channels: int | None = 16,
        num_layers: int = 60,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 3584,
        guidance_embeds: bool = False,
        axes_dims_rope: tuple[int, int, int] = (16, 56, 56),
        zero_cond_t: bool = False,
        use_additional_t_cond: bool = False,
        use_layer3d_rope: bool = False,
    ) -> None:
        super().__init__()
        if guidance_embeds:
            # diffusers 0.42.1 accepts the key but its forward cannot run with it; no checkpoint sets it.
            raise CheckpointError(
                "transformer config: guidance_embeds=True is not a runnable Qwen-Image configuration"
            )
        if sum(axes_dims_rope) != attention_head_dim:
            raise CheckpointError(
                f"transformer config: axes_dims_rope={axes_dims_rope} must sum to "
                f"attention_head_dim={attention_head_dim}"
            )
        dim = num_attention_heads * attention_head_dim
        self.out_channels = out_channels or in_channels
        self.axes_dims_rope = tuple(axes_dims_rope)
        self.zero_cond_t = zero_cond_t
        self.layer3d = use_layer3d_rope
        self.time_text_embed = TimestepEmbed(dim, use_additional_t_cond)
        # Step by step as diffusers: the fused kernel's bits differ at this width on CUDA (layers.norm).
        self.txt_norm = StepwiseRMSNorm(joint_attention_dim, eps=1e-6)
        self.img_in = nn.Linear(in_channels, dim)
        self.txt_in = nn.Linear(joint_attention_dim, dim)
        self.transformer_blocks = nn.ModuleList(
            QwenImageBlock(dim, num_attention_heads, attention_head_dim, zero_cond_t=zero_cond_t)
            for _ in range(num_layers)
        )
        self.norm_out = OutputNorm(dim)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * self.out_channels)

    def rope(self, img_shapes: list[ImageShape], text_len: int, device: torch.device) -> tuple[Rope, Rope]:
        """(image, text) RoPE tables for one request; compute once and pass to every step's forward."""
        return qwen_rope(img_shapes, text_len, self.axes_dims_rope, ROPE_THETA, device, self.layer3d)

    def modulate_index(
        self, img_shapes: list[ImageShape], batch: int, device: torch.device
    ) -> torch.Tensor | None:
        """zero_cond_t: 0 for the generated image's tokens, 1 for the reference images' tokens."""
        if not self.zero_cond_t:
            return None
        first = prod(img_shapes[0])
        rest = sum(prod(s) for s in img_shapes[1:])
        row = torch.cat([torch.zeros(first, dtype=torch.int), torch.ones(rest, dtype=torch.int)])
        return row.to(device).expand(batch, -1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        img_shapes: list[ImageShape],
        encoder_hidden_states_mask: torch.Tensor | None = None,
        rope: tuple[Rope, Rope] | None = None,
        additional_t_cond: torch.Tensor | None = None,
        ctx: PassContext | None = None,
    ) -> torch.Tensor:
        """Velocity [B, S_img, p*p*C] for packed latents [B, S_img, C_in] (all images of a request).

        timestep: [B] in [0, 1]. img_shapes: (frames, h/2, w/2) of each image in the sequence, the same for
        every sample (as the reference, which reads the first sample's). encoder_hidden_states_mask: [B, S_txt]
        (1 valid, 0 padding) reaches every block's joint attention. `ctx` names the sampling loop's pass
        (None outside a loop: the blocks run plainly).
        """
        img = self.img_in(hidden_states)
        timestep = timestep.to(img.dtype)
        index = self.modulate_index(img_shapes, img.shape[0], img.device)
        if index is not None:
            timestep = torch.cat([timestep, timestep * 0], dim=0)
        txt = self.txt_in(self.txt_norm(encoder_hidden_states))
        temb = self.time_text_embed(timestep, img.dtype, additional_t_cond)
        if rope is None:
            rope = self.rope(img_shapes, txt.shape[1], img.device)
        mask = joint_mask(encoder_hidden_states_mask, img.shape[1])
        inputs = QwenImageBlockInputs(temb=temb, mask=mask, rope=rope, modulate_index=index)
        img, _ = self.run_blocks((img, txt), inputs, ctx)
        if index is not None:
            temb = temb.chunk(2, dim=0)[0]
        return self.proj_out(self.norm_out(img, temb))

    def run_blocks(self, streams: Streams, inputs: QwenImageBlockInputs, ctx: PassContext | None) -> Streams:
        """The one block loop: (image, text) through every dual-stream block; returns (image, text)."""
        return run_block_loop(block_plan(self.transformer_blocks, inputs), streams, ctx)
