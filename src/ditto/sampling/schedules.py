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
    """The official LTX-2 schedule: `steps + 1` float32 sigmas from 1 to 0.

    The official one-stage pipeline passes no latent, so the shift is computed as if the video had 4096
    tokens (mu = max_shift) whatever its size, and the non-zero sigmas are stretched so the last equals
    `terminal`. The rule is evaluated in float32 NumPy arithmetic, as diffusers' scheduler does, so at
    4096 tokens ditto and diffusers agree to the bit; the official code's float32 torch arithmetic (which
    divides by reciprocal-multiply) differs from both by at most ~4e-7 per sigma (docs/parity.md).
    """
    if steps == 1:
        # One step goes from pure noise to x0; the stretch below would divide 0 by 0 (the official and
        # diffusers' code both return NaN here), so the single-step schedule is [1, 0].
        return torch.tensor([1.0, 0.0], dtype=torch.float32)
    slope = (max_shift - base_shift) / (MAX_SHIFT_ANCHOR - BASE_SHIFT_ANCHOR)
    mu = tokens * slope + (base_shift - slope * BASE_SHIFT_ANCHOR)
    sigmas = np.linspace(1.0, 1.0 / steps, steps).astype(np.float32)
    shifted = math.exp(mu) / (math.exp(mu) + (1.0 / sigmas - 1.0))
    one_minus = 1.0 - shifted
    stretched = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return torch.tensor(np.append(stretched, 0.0), dtype=torch.float32)


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
