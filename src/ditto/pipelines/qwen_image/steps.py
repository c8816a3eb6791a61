"""Qwen-Image's public steps before denoising: prompts (positive and negative apart), edit images, the
denoising loop's inputs (noise, image grids, sigmas)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ditto.pipelines.qwen_image.components import QwenImageComponents
from ditto.pipelines.qwen_image.denoise import DenoiseInputs
from ditto.pipelines.qwen_image.latents import initial_noise, patches_to_tokens
from ditto.pipelines.qwen_image.params import (
    CONDITION_IMAGE_AREA,
    VAE_IMAGE_AREA,
    QwenImageParams,
    area_dimensions,
)
from ditto.pipelines.qwen_image.schedule import flow_sigmas
from ditto.pipelines.qwen_image.text import TextEmbeddings, encode_edit_text, encode_text

Encoder = Callable[[list[str]], TextEmbeddings]


def text_encoder(c: QwenImageComponents) -> Encoder:
    """Text-to-image prompts -> embeddings."""
    return lambda prompts: encode_text(c.tokenizer, c.text_encoder, prompts, c.device)


def edit_text_encoder(c: QwenImageComponents, condition_images: list[Any]) -> Encoder:
    """Edit prompts -> embeddings, each prompt seeing every condition image."""
    return lambda prompts: encode_edit_text(
        c.tokenizer, c.image_processor, c.text_encoder, prompts, condition_images, c.device
    )


def encode_prompts(
    params: QwenImageParams, encoder: Encoder, max_length: int | None
) -> tuple[TextEmbeddings, TextEmbeddings | None]:
    """Positive and (with true CFG) negative prompts, encoded apart as the reference does."""
    times = params.num_images_per_prompt
    cond = encoder(params.prompts).repeat(times, max_length)
    uncond = encoder(params.negative_prompts).repeat(times, max_length) if params.do_true_cfg else None
    return cond, uncond


@dataclass
class EditImages:
    """Each input image as the VL encoder sees it (~384^2 pixels) and as the VAE encodes it (~1024^2)."""

    conditions: list[Any]  # PIL images
    vae_inputs: list[torch.Tensor]  # [1, 3, 1, H, W] in [-1, 1]
    shapes: list[tuple[int, int, int]]  # (1, h/2, w/2) latent patch grid of each


def prepare_edit_images(c: QwenImageComponents, images: list[Any]) -> EditImages:
    from diffusers.image_processor import VaeImageProcessor

    # diffusers' own resize/preprocess (PIL Lanczos, [-1, 1]) so the pixels are the reference's.
    processor = VaeImageProcessor(vae_scale_factor=c.multiple)
    prepared = EditImages([], [], [])
    for image in images:
        ratio = image.size[0] / image.size[1]
        cw, ch = area_dimensions(CONDITION_IMAGE_AREA, ratio)
        vw, vh = area_dimensions(VAE_IMAGE_AREA, ratio)
        prepared.conditions.append(processor.resize(image, ch, cw))
        prepared.vae_inputs.append(processor.preprocess(image, vh, vw).unsqueeze(2))
        prepared.shapes.append((1, vh // c.vae_scale_factor // 2, vw // c.vae_scale_factor // 2))
    return prepared


def initial_latents(
    c: QwenImageComponents, params: QwenImageParams, batch: int, h: int, w: int
) -> torch.Tensor:
    """The given `latents`, or noise tokens drawn [B, 1, C, h, w] as the reference (latent h, w)."""
    if params.latents is not None:
        return params.latents.to(device=c.device, dtype=c.dtype)
    generator = params.generator or torch.Generator("cpu").manual_seed(
        params.seed if params.seed is not None else random.randrange(2**63)
    )
    noise = initial_noise((batch, 1, c.latent_channels, h, w), generator, c.device, c.dtype)
    return patches_to_tokens(noise[:, 0])


def denoise_inputs(
    c: QwenImageComponents,
    params: QwenImageParams,
    prompts: tuple[TextEmbeddings, TextEmbeddings | None],
    size: tuple[int, int],
    image_latents: torch.Tensor | None = None,
    reference_shapes: list[tuple[int, int, int]] | None = None,
) -> DenoiseInputs:
    """Everything the denoising loop reads: noise, prompts, the image grids of the sequence, the sigmas."""
    cond, uncond = prompts
    h, w = size[0] // c.vae_scale_factor, size[1] // c.vae_scale_factor
    latents = initial_latents(c, params, cond.embeds.shape[0], h, w)
    return DenoiseInputs(
        latents=latents,
        image_latents=image_latents,
        cond=cond,
        uncond=uncond,
        cfg_scale=params.cfg_scale,
        img_shapes=[(1, h // 2, w // 2), *(reference_shapes or [])],
        sigmas=flow_sigmas(c.scheduler_config, params.num_inference_steps, latents.shape[1], params.sigmas),
    )
