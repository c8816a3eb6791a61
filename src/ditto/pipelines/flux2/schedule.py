"""FLUX.2 sigma schedule: linear sigmas with a resolution- and step-dependent shift.

The arithmetic follows diffusers' FlowMatchEulerDiscreteScheduler (NumPy float32 sigmas, Python-float
shift) so the values agree to the last bit; the scheduler config is read from the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch

from ditto.sampling.schedules import check_flow_match_config, flow_match_sigmas


def empirical_mu(image_tokens: int, steps: int) -> float:
    """FLUX.2's shift exponent: a line in token count fitted at 10 and 200 steps, interpolated in steps.

    Constants from diffusers `compute_empirical_mu` (pipelines/flux2), i.e. the official FLUX.2 code.
    """
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    if image_tokens > 4300:
        return float(a2 * image_tokens + b2)
    mu_200 = a2 * image_tokens + b2
    mu_10 = a1 * image_tokens + b1
    slope = (mu_200 - mu_10) / 190.0
    return float(slope * steps + (mu_200 - 200.0 * slope))


def check_scheduler_config(config: dict[str, Any]) -> None:
    check_flow_match_config(config, "flux2-klein")


def klein_sigmas(
    config: dict[str, Any], steps: int, image_tokens: int, sigmas: list[float] | None = None
) -> torch.Tensor:
    """float32 sigmas [n + 1] ending in 0. `sigmas` replaces the linear grid; mu still uses `steps`."""
    mu = empirical_mu(image_tokens, steps) if config.get("use_dynamic_shifting", False) else None
    return flow_match_sigmas(config, steps, mu, sigmas)
