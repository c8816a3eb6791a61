"""Qwen-Image stages after text encoding: reference-image latents, the denoising loop, VAE decode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ditto.media.pixels import to_pil  # noqa: F401  (re-exported for qwen_image.py)
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.qwen_image_components import QwenImageComponents
from ditto.pipelines.qwen_image_sampling import pack, true_cfg, unpack
from ditto.pipelines.qwen_image_text import TextEmbeddings
from ditto.runtime.progress import Progress
from ditto.sampling.euler import euler_step


@dataclass
class DenoiseInputs:
    latents: torch.Tensor  # [B, S, C*4] packed noise
    image_latents: torch.Tensor | None  # [B, S_ref, C*4] packed reference images (edit), fixed
    cond: TextEmbeddings
    uncond: TextEmbeddings | None  # None: no true CFG
    cfg_scale: float
    img_shapes: list[tuple[int, int, int]]
    sigmas: torch.Tensor  # [steps + 1] float32


def _latent_stats(components: QwenImageComponents) -> tuple[torch.Tensor, torch.Tensor]:
    config = components.vae.config
    shape = (1, config.z_dim, 1, 1, 1)
    mean = torch.tensor(config.latents_mean).view(shape).to(components.device, components.dtype)
    std = torch.tensor(config.latents_std).view(shape).to(components.device, components.dtype)
    return mean, std


@torch.inference_mode()
def encode_reference_images(
    components: QwenImageComponents, vae_images: list[torch.Tensor], batch: int
) -> torch.Tensor:
    """Each [1, 3, 1, H, W] image -> VAE mode -> normalised -> packed; concatenated along the sequence."""
    mean, std = _latent_stats(components)
    packed = []
    for image in vae_images:
        image = image.to(device=components.device, dtype=components.dtype)
        latents = components.vae.encode(image).latent_dist.mode()
        latents = (latents - mean) / std
        packed.append(pack(latents[:, :, 0].expand(batch, -1, -1, -1)))  # [1, C, 1, H, W] -> [B, C, H, W]
    return torch.cat(packed, dim=1)


def _velocity(
    components: QwenImageComponents,
    inputs: DenoiseInputs,
    x: torch.Tensor,
    timestep: torch.Tensor,
    text: TextEmbeddings,
    rope: Any,
) -> torch.Tensor:
    out = components.transformer(
        x, text.embeds, timestep, inputs.img_shapes, encoder_hidden_states_mask=text.mask, rope=rope
    )
    return out[:, : inputs.latents.shape[1]]


@torch.inference_mode()
def denoise(
    components: QwenImageComponents, inputs: DenoiseInputs, progress: ProgressCallback | None
) -> torch.Tensor:
    """Flow-match Euler over the sigmas; true CFG (combine, then rescale to the conditional norm) when asked."""
    transformer, device = components.transformer, components.device
    sigmas = inputs.sigmas.to(device)
    timesteps = sigmas[:-1] * 1000  # the reference scheduler's timesteps, float32
    ropes = [transformer.rope(inputs.img_shapes, inputs.cond.embeds.shape[1], device)]
    if inputs.uncond is not None:
        ropes.append(transformer.rope(inputs.img_shapes, inputs.uncond.embeds.shape[1], device))
    latents = inputs.latents
    steps = len(timesteps)
    with Progress(steps, progress).loop("denoise", steps) as step:
        for i in range(steps):
            x = latents if inputs.image_latents is None else torch.cat([latents, inputs.image_latents], dim=1)
            timestep = timesteps[i].expand(latents.shape[0]).to(latents.dtype) / 1000
            velocity = _velocity(components, inputs, x, timestep, inputs.cond, ropes[0])
            if inputs.uncond is not None:
                negative = _velocity(components, inputs, x, timestep, inputs.uncond, ropes[1])
                velocity = true_cfg(velocity, negative, inputs.cfg_scale)
            latents = euler_step(latents, velocity, sigmas[i], sigmas[i + 1])
            step()
    return latents


@torch.inference_mode()
def decode(components: QwenImageComponents, latents: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Packed latents -> images np.float32 [B, H, W, 3] in [0, 1], as the reference's postprocess."""
    factor = components.vae_scale_factor
    x = unpack(latents, height // factor, width // factor).to(components.vae.dtype)
    mean, std = _latent_stats(components)
    x = x / (1.0 / std) + mean  # the reference divides by the reciprocal: same rounding
    image = components.vae.decode(x, return_dict=False)[0][:, :, 0]
    return (image * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
