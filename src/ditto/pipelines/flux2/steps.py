"""FLUX.2 Klein's steps before and after denoising: text, reference images, initial latents, decode.

Each is a public function of the loaded components and the request's parameters, so a pipeline is the list
of its steps (pipeline.py) and a test or another recipe can run any of them alone.
"""

from __future__ import annotations

from concurrent.futures import Future

import torch

from ditto.errors import InvalidParameter
from ditto.media.pixels import to_pil
from ditto.pipelines.base import vae_images
from ditto.pipelines.flux2.components import KleinComponents
from ditto.pipelines.flux2.denoise import Conditioning
from ditto.pipelines.flux2.latents import (
    grid_ids,
    grid_to_tokens,
    latent_norm,
    reference_ids,
    text_ids,
    tokens_to_grid,
    unpatchify,
)
from ditto.pipelines.flux2.params import DEFAULT_SIDE, Flux2KleinParams
from ditto.pipelines.flux2.references import encode_references, first_reference_size
from ditto.result import Result
from ditto.sampling.noise import draw_ahead


def uses_cfg(c: KleinComponents, params: Flux2KleinParams) -> bool:
    # diffusers: CFG only for the base model, and only when guidance_scale > 1.
    return params.guidance_scale > 1 and not c.is_distilled


def encode_text(c: KleinComponents, params: Flux2KleinParams) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B * n, L, D] prompt embeddings (each prompt repeated n = num_images_per_prompt times), and the
    negative ones with CFG."""
    n = params.num_images_per_prompt
    prompts = [p for p in params.prompt for _ in range(n)]
    if uses_cfg(c, params):
        prompts = prompts + [""] * len(prompts)  # diffusers' negative prompt is always ""
    embeds = c.text_encoder.encode(
        prompts, params.max_sequence_length, params.text_encoder_out_layers, c.dtype
    )
    batch = params.batch_size
    return embeds[:batch], (embeds[batch:] if uses_cfg(c, params) else None)


def encode_images(
    c: KleinComponents, params: Flux2KleinParams
) -> tuple[torch.Tensor | None, list[tuple[int, int]]]:
    """The reference images' tokens [B, S_ref, C] and each image's token grid (None, [] without images)."""
    if params.image is None:
        return None, []
    tokens, grids = encode_references(c.vae, params.image, c.multiple)
    return tokens.expand(params.batch_size, -1, -1), grids


def output_size(c: KleinComponents, params: Flux2KleinParams) -> tuple[int, int]:
    # diffusers: a missing side comes from the first reference image, else 1024.
    ref_h, ref_w = first_reference_size(params.image, c.multiple) if params.image else (None, None)
    return params.height or ref_h or DEFAULT_SIDE, params.width or ref_w or DEFAULT_SIDE


def noise_shape(c: KleinComponents, params: Flux2KleinParams, height: int, width: int) -> tuple[int, ...]:
    """[B, C, h, w] of the latents (before they become tokens)."""
    return (params.batch_size, c.latent_channels, height // c.multiple, width // c.multiple)


def noise_ahead(
    c: KleinComponents, params: Flux2KleinParams, height: int, width: int
) -> Future[torch.Tensor] | None:
    """The initial noise's draw, started now on the worker thread (None when `latents` are given)."""
    if params.latents is not None:
        return None
    return draw_ahead(noise_shape(c, params, height, width), params.seed, c.dtype)


def initial_latents(
    c: KleinComponents,
    params: Flux2KleinParams,
    height: int,
    width: int,
    noise: Future[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Noise tokens [B, h*w, C] drawn as diffusers' randn_tensor does with a CPU generator seeded `seed`
    (`noise`: that draw, already started by `noise_ahead`), or the given `latents`."""
    shape = noise_shape(c, params, height, width)
    if params.latents is not None:
        if tuple(params.latents.shape) != shape:
            raise InvalidParameter(
                "latents", tuple(params.latents.shape), "has the wrong shape", f"expected {shape}"
            )
        return grid_to_tokens(params.latents.to(c.device, c.dtype))
    noise = noise if noise is not None else noise_ahead(c, params, height, width)
    return grid_to_tokens(noise.result().to(c.device))


def conditioning(
    c: KleinComponents,
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor | None,
    references: torch.Tensor | None,
    ref_grids: list[tuple[int, int]],
    grid: tuple[int, int],
) -> Conditioning:
    """What the denoiser reads besides the latents: prompts, the RoPE table, the reference tokens."""
    img_ids = grid_ids(0, *grid, c.device)
    if references is not None:
        img_ids = torch.cat([img_ids, reference_ids(ref_grids, c.device)], dim=0)
    rope = c.transformer.rope(text_ids(prompt_embeds.shape[1], c.device), img_ids)
    refs = None if references is None else references.to(c.dtype)
    return Conditioning(prompt_embeds, negative_embeds, rope, refs, grid)


def decode(
    c: KleinComponents, params: Flux2KleinParams, latents: torch.Tensor, grid: tuple[int, int]
) -> Result:
    """Tokens -> de-normalised VAE latents -> images (or the latents, for output_type="latent")."""
    latents = tokens_to_grid(latents, *grid)
    mean, std = latent_norm(c.vae)
    latents = unpatchify(
        latents * std.to(latents.device, latents.dtype) + mean.to(latents.device, latents.dtype)
    )
    if params.output_type == "latent":
        return Result(latents={"image": latents})
    images = vae_images(c.vae.decode(latents.to(c.vae.dtype), return_dict=False)[0])
    return Result(images=to_pil(images) if params.output_type == "pil" else images)
