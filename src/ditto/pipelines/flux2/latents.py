"""FLUX.2 latent layout: 2x2 patchify, grid <-> token sequence, 4-axis position ids, latent statistics.

Token order is raster (row-major) for the image being generated; each reference image follows with its
own time coordinate 10, 20, ... (as diffusers' `_prepare_image_ids`), so the transformer tells them apart.
"""

from __future__ import annotations

import torch

REFERENCE_TIME_STEP = 10


def patchify(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, 4C, H/2, W/2]: each 2x2 patch becomes channels (c, dy, dx order)."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unpatchify(latents: torch.Tensor) -> torch.Tensor:
    b, c4, h, w = latents.shape
    x = latents.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c4 // 4, h * 2, w * 2)


def grid_to_tokens(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C] in raster order (diffusers' `_pack_latents`)."""
    b, c, h, w = latents.shape
    return latents.reshape(b, c, h * w).permute(0, 2, 1)


def tokens_to_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of `grid_to_tokens` (the ids are raster order, so no scatter is needed)."""
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


def latent_norm(vae) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the patchified latents (the VAE's batch-norm running statistics)."""
    mean = vae.bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
    return mean, std
