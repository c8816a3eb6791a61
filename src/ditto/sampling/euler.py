"""Flow-matching Euler: x_{next} = x + (sigma_next - sigma) * velocity, in float32."""

from __future__ import annotations

import torch


def euler_step(
    sample: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """One step; sigmas are 0-d float32 tensors so no host sync happens inside the loop.

    The state is updated in float32 while the step product keeps the velocity's dtype, as diffusers'
    FlowMatchEulerDiscreteScheduler does (identical in float32, and equal to it in bfloat16 too).
    """
    return (sample.float() + (sigma_next - sigma) * velocity).to(sample.dtype)


def velocity_to_x0(sample: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return sample - velocity * sigma


def x0_to_velocity(sample: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return (sample - x0) / sigma
