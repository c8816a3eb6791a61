"""Qwen-Image latents: initial noise, 2x2 patches <-> token sequence, reference-image encoding, VAE decode.

Each follows diffusers 0.42.1 operation for operation (CPU-generator noise, the VAE's latent statistics),
so a seed gives the reference's numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from ditto.pipelines.base import vae_images
from ditto.pipelines.qwen_image.components import QwenImageComponents


def initial_noise(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """diffusers' randn_tensor with one generator: drawn on the generator's device in `dtype`, then moved."""
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def patches_to_tokens(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H/2 * W/2, C*4]: 2x2 patches, channel-major (diffusers' `_pack_latents`)."""
    b, c, h, w = latents.shape
    x = latents.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def tokens_to_patches(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B, S, C*4] -> [B, C, 1, height, width] (latent height/width; diffusers' `_unpack_latents`)."""
    b, _, channels = tokens.shape
    x = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels // 4, 1, height, width)


def latent_stats(components: QwenImageComponents) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE config's per-channel latent mean and std, [1, C, 1, 1, 1] on the device."""
    config = components.vae.config
    shape = (1, config.z_dim, 1, 1, 1)
    mean = torch.tensor(config.latents_mean).view(shape).to(components.device, components.dtype)
    std = torch.tensor(config.latents_std).view(shape).to(components.device, components.dtype)
    return mean, std


@torch.inference_mode()
def encode_reference_images(
    components: QwenImageComponents, vae_images: list[torch.Tensor], batch: int
) -> torch.Tensor:
    """Each [1, 3, 1, H, W] image -> VAE mode -> normalised -> tokens; concatenated along the sequence."""
    mean, std = latent_stats(components)
    packed = []
    for image in vae_images:
        image = image.to(device=components.device, dtype=components.dtype)
        latents = components.vae.encode(image).latent_dist.mode()
        latents = (latents - mean) / std
        # [1, C, 1, H, W] -> [B, C, H, W] -> tokens
        packed.append(patches_to_tokens(latents[:, :, 0].expand(batch, -1, -1, -1)))
    return torch.cat(packed, dim=1)


@torch.inference_mode()
def decode(components: QwenImageComponents, latents: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Tokens -> images np.float32 [B, H, W, 3] in [0, 1], as the reference's postprocess."""
    factor = components.vae_scale_factor
    x = tokens_to_patches(latents, height // factor, width // factor).to(components.vae.dtype)
    mean, std = latent_stats(components)
    x = x / (1.0 / std) + mean  # the reference divides by the reciprocal: same rounding
    return vae_images(components.vae.decode(x, return_dict=False)[0][:, :, 0])
