"""Sigma schedules for flow matching."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ditto.errors import CheckpointError

# ltx_core/components/schedulers.py (ltx-core 1.0.0): the shift is interpolated between these token counts.
BASE_SHIFT_ANCHOR = 1024
MAX_SHIFT_ANCHOR = 4096


def ltx2_sigmas(
    steps: int,
    tokens: int = MAX_SHIFT_ANCHOR,
    base_shift: float = 0.95,
    max_shift: float = 2.05,
    terminal: float = 0.1,
) -> torch.Tensor:
    """The official LTX-2 schedule (ltx_core LTX2Scheduler, 1.0.0): `steps + 1` float32 sigmas down to 0.

    The official one-stage pipeline passes no latent, so the shift is computed as if the video had 4096
    tokens (mu = max_shift) whatever its size, and the non-zero sigmas are stretched so the last equals
    `terminal`. The arithmetic is the official float32 torch arithmetic, operation for operation, so every
    sigma is bit-equal to the official one (tests/parity/test_ltx_official.py). That is not diffusers'
    float32 NumPy arithmetic: torch divides a Python number by a tensor as a multiplication by the
    reciprocal, so the first sigma is 0.9999995 (2 steps) to 0.99999994 rather than diffusers' exact 1.0,
    and at 1 step the stretch divides that 6e-8 by itself: [0.1, 0] (diffusers: NaN). docs/parity.md.
    """
    slope = (max_shift - base_shift) / (MAX_SHIFT_ANCHOR - BASE_SHIFT_ANCHOR)
    mu = tokens * slope + (base_shift - slope * BASE_SHIFT_ANCHOR)
    grid = torch.linspace(1.0, 0.0, steps + 1)
    shifted = torch.where(grid != 0, math.exp(mu) / (math.exp(mu) + (1 / grid - 1)), 0)
    nonzero = shifted != 0
    one_minus = 1.0 - shifted[nonzero]
    shifted[nonzero] = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return shifted.to(torch.float32)


def explicit_sigmas(sigmas: list[float]) -> torch.Tensor:
    """A user-given schedule, used as is; a final 0 is appended when missing (the last step lands on x0)."""
    values = [float(s) for s in sigmas]
    if values[-1] != 0.0:
        values.append(0.0)
    return torch.tensor(values, dtype=torch.float32)


# Scheduler options of diffusers' FlowMatchEulerDiscreteScheduler that ditto's flow-match families do not run.
UNSUPPORTED_FLOW_MATCH_KEYS = (
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "invert_sigmas",
    "stochastic_sampling",
)


def check_flow_match_config(config: dict[str, Any], family: str) -> None:
    """A checkpoint's scheduler config that asks for a variant ditto does not run is a clear error."""
    for key in UNSUPPORTED_FLOW_MATCH_KEYS:
        if config.get(key):
            raise CheckpointError(f"scheduler config {key}={config[key]!r} is not supported for {family}")


def flow_match_sigmas(
    config: dict[str, Any], steps: int, mu: float | None, sigmas: list[float] | None = None
) -> torch.Tensor:
    """`steps + 1` float32 sigmas ending in 0, as FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas, mu).

    `sigmas` replaces the linear grid; `mu` is the family's shift exponent (used with dynamic shifting).
    The arithmetic runs in NumPy float32 in the reference's order, so every value matches to the bit.
    """
    grid = np.linspace(1.0, 1 / steps, steps) if sigmas is None else sigmas
    values = np.array(grid).astype(np.float32)
    if config.get("use_dynamic_shifting", False):
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
