"""FLUX.2 latent layout: 2x2 patchify, token packing, 4-axis position ids, reference-image preparation.

Token order is raster (row-major) for the image being generated; each reference image follows with its
own time coordinate 10, 20, ... (as diffusers' `_prepare_image_ids`), so the transformer tells them apart.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

REFERENCE_TIME_STEP = 10
MAX_REFERENCE_AREA = 1024 * 1024  # larger references are downscaled to this area (LANCZOS), as diffusers


def patchify(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, 4C, H/2, W/2]: each 2x2 patch becomes channels (c, dy, dx order)."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unpatchify(latents: torch.Tensor) -> torch.Tensor:
    b, c4, h, w = latents.shape
    x = latents.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c4 // 4, h * 2, w * 2)


def pack(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C] in raster order."""
    b, c, h, w = latents.shape
    return latents.reshape(b, c, h * w).permute(0, 2, 1)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of `pack` (the ids are raster order, so no scatter is needed)."""
    b, _, c = tokens.shape
    return tokens.view(b, height, width, c).permute(0, 3, 1, 2)


def grid_ids(time: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """[H*W, 4] (t, h, w, l) ids of an image grid, raster order."""
    return torch.cartesian_prod(
        torch.tensor([time]), torch.arange(height), torch.arange(width), torch.tensor([0])
    ).to(device)


def text_ids(length: int, device: torch.device) -> torch.Tensor:
    """[L, 4] ids of text tokens: (0, 0, 0, index)."""
    zero = torch.tensor([0])
    return torch.cartesian_prod(zero, zero, zero, torch.arange(length)).to(device)


def reference_ids(grids: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """Ids of all reference tokens: image i has time 10 * (i + 1)."""
    return torch.cat(
        [grid_ids(REFERENCE_TIME_STEP * (i + 1), h, w, device) for i, (h, w) in enumerate(grids)], dim=0
    )


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
    array = (np.array(image.convert("RGB")).astype(np.float32) / 255.0)[None]
    return torch.from_numpy(array.transpose(0, 3, 1, 2)) * 2.0 - 1.0


def latent_norm(vae) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the patchified latents (the VAE's batch-norm running statistics)."""
    mean = vae.bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
    return mean, std


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
        packed.append(pack(latents))
    return torch.cat(packed, dim=1), grids


def first_reference_size(images: list[Image.Image], multiple: int) -> tuple[int, int]:
    """(height, width) the output takes from the first reference when none is given."""
    width, height = fit_reference(images[0], multiple).size
    return height, width
