"""Flow-matching Euler: x_{next} = x + (sigma_next - sigma) * velocity, the state updated in float32."""

from __future__ import annotations

from typing import Literal

import torch

CastTo = Literal["sample", "velocity"]


def euler_step(
    sample: torch.Tensor,
    velocity: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    cast_to: CastTo = "sample",
) -> torch.Tensor:
    """One step; sigmas are 0-d float32 tensors so no host sync happens inside the loop.

    The sample is taken to float32 and the step product keeps the velocity's dtype, as diffusers'
    FlowMatchEulerDiscreteScheduler.step does. The result is cast back to:
    - "sample": the sample's dtype, so the state keeps its own precision (LTX-2, Qwen-Image);
    - "velocity": the velocity's dtype, as FlowMatchEulerDiscreteScheduler.step
      (`prev_sample.to(model_output.dtype)`), which FLUX.2 Klein follows: a float32 sample given with a
      bfloat16 model continues in bfloat16.
    The two agree whenever sample and velocity share a dtype.
    """
    out = sample.float() + (sigma_next - sigma) * velocity
    return out.to(sample.dtype if cast_to == "sample" else velocity.dtype)


def velocity_to_x0(sample: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return sample - velocity * sigma


def x0_to_velocity(sample: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return (sample - x0) / sigma
