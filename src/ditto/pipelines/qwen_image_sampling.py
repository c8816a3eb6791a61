"""Qwen-Image sampling pieces: the flow-match schedule, initial noise, latent packing and true CFG.

Each follows diffusers 0.42.1 operation for operation (NumPy float32 schedule, CPU-generator noise), so a
seed gives the same numbers as the reference. The schedule arithmetic is shared with FLUX.2
(`sampling.schedules.flow_match_sigmas`); only the shift exponent is Qwen-Image's own.
"""

from __future__ import annotations

from typing import Any

import torch

from ditto.sampling.schedules import check_flow_match_config, flow_match_sigmas


def check_scheduler_config(config: dict[str, Any]) -> None:
    check_flow_match_config(config, "Qwen-Image")


def calculate_shift(tokens: int, config: dict[str, Any]) -> float:
    """mu, linear in the image token count between (base_image_seq_len, base_shift) and the max pair."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return tokens * slope + (base_shift - slope * base_len)


def flow_sigmas(
    config: dict[str, Any], steps: int, tokens: int, sigmas: list[float] | None = None
) -> torch.Tensor:
    """`steps + 1` float32 sigmas (last 0), with Qwen-Image's linear-in-tokens shift exponent."""
    mu = calculate_shift(tokens, config) if config.get("use_dynamic_shifting", False) else None
    return flow_match_sigmas(config, steps, mu, sigmas)


def initial_noise(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """diffusers' randn_tensor with one generator: drawn on the generator's device in `dtype`, then moved."""
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def pack(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H/2 * W/2, C*4]: 2x2 patches, channel-major."""
    b, c, h, w = latents.shape
    x = latents.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B, S, C*4] -> [B, C, 1, height, width] (latent height/width)."""
    b, _, channels = tokens.shape
    x = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels // 4, 1, height, width)


def true_cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Combine the branches, then rescale each token's vector to the conditional prediction's norm."""
    combined = uncond + scale * (cond - uncond)
    cond_norm = torch.norm(cond, dim=-1, keepdim=True)
    combined_norm = torch.norm(combined, dim=-1, keepdim=True)
    return combined * (cond_norm / combined_norm)
