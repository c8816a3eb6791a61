"""FLUX.2 reference images: fitted to the model's size rules, VAE-encoded, normalised, as token sequences."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from ditto.media.pixels import to_uint8
from ditto.pipelines.flux2.latents import grid_to_tokens, latent_norm, patchify

MAX_REFERENCE_AREA = 1024 * 1024  # larger references are downscaled to this area (LANCZOS), as diffusers


def fit_reference(image: Image.Image, multiple: int) -> Image.Image:
    """Downscale to at most 1024^2 pixels, then centre-crop each side down to a multiple of `multiple`."""
    width, height = image.size
    if width * height > MAX_REFERENCE_AREA:
        scale = math.sqrt(MAX_REFERENCE_AREA / (width * height))
        image = image.resize((int(width * scale), int(height * scale)), Image.Resampling.LANCZOS)
        width, height = image.size
    new_w, new_h = width // multiple * multiple, height // multiple * multiple
    left, top = (width - new_w) // 2, (height - new_h) // 2
    return image.crop((left, top, left + new_w, top + new_h))


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> [1, 3, H, W] float32 in [-1, 1], laid out channels-last in memory.

    The layout is the reference's (a transposed [1, H, W, 3] array): the VAE's convolutions pick their
    algorithm by memory format, and a contiguous copy would move the latents by about 1e-6.
    """
    array = (to_uint8(image).astype(np.float32) / 255.0)[None]
    return torch.from_numpy(array.transpose(0, 3, 1, 2)) * 2.0 - 1.0


def encode_references(
    vae, images: list[Image.Image], multiple: int
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Reference images -> normalised packed latents [1, sum(h*w), C] and each image's token grid.

    Each image is encoded alone with the posterior mode (no noise is drawn), as diffusers does.
    """
    device, dtype = vae.device, vae.dtype
    mean, std = latent_norm(vae)
    packed, grids = [], []
    for image in images:
        pixels = image_to_tensor(fit_reference(image, multiple)).to(device=device, dtype=dtype)
        latents = patchify(vae.encode(pixels).latent_dist.mode())
        latents = (latents - mean.to(device, latents.dtype)) / std.to(device, latents.dtype)
        grids.append((latents.shape[2], latents.shape[3]))
        packed.append(grid_to_tokens(latents))
    return torch.cat(packed, dim=1), grids


def first_reference_size(images: list[Image.Image], multiple: int) -> tuple[int, int]:
    """(height, width) the output takes from the first reference when none is given."""
    width, height = fit_reference(images[0], multiple).size
    return height, width
