"""Qwen-Image's flow-match schedule, as diffusers 0.42.1 computes it (NumPy float32), so the sigmas match to
the bit. The arithmetic is shared with FLUX.2 (`sampling.schedules.flow_match_sigmas`); only the shift
exponent is Qwen-Image's own.
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
