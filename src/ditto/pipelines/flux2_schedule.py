"""FLUX.2 sigma schedule: linear sigmas, resolution- and step-dependent shift, flow-match Euler steps.

The arithmetic follows diffusers' FlowMatchEulerDiscreteScheduler (NumPy float32 sigmas, Python-float
shift) so the values agree to the last bit; the scheduler config is read from the checkpoint.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ditto.errors import CheckpointError

UNSUPPORTED = (
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "invert_sigmas",
    "stochastic_sampling",
)


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
    for key in UNSUPPORTED:
        if config.get(key):
            raise CheckpointError(f"scheduler config {key}={config[key]!r} is not supported for flux2-klein")


def klein_sigmas(
    config: dict[str, Any], steps: int, image_tokens: int, sigmas: list[float] | None = None
) -> torch.Tensor:
    """float32 sigmas [n + 1] ending in 0. `sigmas` replaces the linear grid; mu still uses `steps`."""
    grid = np.linspace(1.0, 1 / steps, steps) if sigmas is None else sigmas
    values = np.array(grid).astype(np.float32)
    if config.get("use_dynamic_shifting", False):
        mu = empirical_mu(image_tokens, steps)
        if config.get("time_shift_type", "exponential") == "exponential":
            values = math.exp(mu) / (math.exp(mu) + (1 / values - 1) ** 1.0)
        else:
            values = mu / (mu + (1 / values - 1) ** 1.0)
    else:
        shift = config.get("shift", 1.0)
        values = shift * values / (1 + (shift - 1) * values)
    terminal = config.get("shift_terminal")
    if terminal:
        one_minus = 1 - values
        values = 1 - (one_minus / (one_minus[-1] / (1 - terminal)))
    out = torch.from_numpy(np.asarray(values)).to(torch.float32)
    return torch.cat([out, torch.zeros(1)])


def euler_step(
    latents: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """x + (sigma_next - sigma) * v in float32, cast to the velocity's dtype (as diffusers' step)."""
    return (latents.to(torch.float32) + (sigma_next - sigma) * velocity).to(velocity.dtype)
