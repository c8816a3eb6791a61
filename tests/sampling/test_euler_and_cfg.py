"""The one Euler step (its cast rule against diffusers' FlowMatchEulerDiscreteScheduler.step) and the CFG
combination of FLUX.2 Klein and Qwen-Image."""

from __future__ import annotations

import pytest
import torch

from ditto.sampling.euler import euler_step
from ditto.sampling.guidance import CFGParams, cfg


def scheduler_step(sample: torch.Tensor, velocity: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """diffusers' own first step over `sigmas` (the reference side)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=sigmas)
    return scheduler.step(velocity, scheduler.timesteps[0], sample, return_dict=False)[0]


@pytest.mark.parametrize(
    ("sample_dtype", "velocity_dtype"),
    [(torch.float32, torch.bfloat16), (torch.bfloat16, torch.bfloat16), (torch.float32, torch.float32)],
)
def test_the_velocity_cast_is_diffusers_step(sample_dtype, velocity_dtype):
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 64, 8, generator=g).to(sample_dtype)
    velocity = torch.randn(2, 64, 8, generator=g).to(velocity_dtype)
    sigmas = [1.0, 0.75, 0.5]
    expected = scheduler_step(sample, velocity, sigmas)
    full = torch.tensor(sigmas + [0.0], dtype=torch.float32)
    got = euler_step(sample, velocity, full[0], full[1], cast_to="velocity")
    assert got.dtype == velocity_dtype and torch.equal(got, expected)
    kept = euler_step(sample, velocity, full[0], full[1])  # the default keeps the state's own dtype
    assert kept.dtype == sample_dtype
    if sample_dtype == velocity_dtype:
        assert torch.equal(kept, got)  # the rules differ only in the final cast


def test_cfg_combines_as_the_formula():
    g = torch.Generator().manual_seed(1)
    cond, uncond = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    assert torch.equal(cfg(CFGParams(1.0), cond, uncond), uncond + (cond - uncond))
    assert torch.equal(cfg(CFGParams(3.5), cond, uncond), uncond + 3.5 * (cond - uncond))


def test_true_cfg_keeps_each_tokens_conditional_norm():
    g = torch.Generator().manual_seed(2)
    cond, uncond = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    out = cfg(CFGParams(4.0, norm_rescale=True), cond, uncond)
    combined = cfg(CFGParams(4.0), cond, uncond)
    torch.testing.assert_close(out.norm(dim=-1), cond.norm(dim=-1))
    cosine = torch.nn.functional.cosine_similarity(out, combined, dim=-1)
    torch.testing.assert_close(cosine, torch.ones_like(cosine))  # rescaled along the combined direction
