"""FLUX.2 sigma schedule against diffusers' FlowMatchEulerDiscreteScheduler (bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditto.pipelines.flux2_schedule import empirical_mu, klein_sigmas
from ditto.tiny.flux2 import KLEIN_SCHEDULER


@pytest.mark.parametrize(
    ("steps", "tokens", "sigmas"),
    [(4, 4096, None), (50, 256, None), (3, 5000, None), (6, 64, [1.0, 0.8, 0.5, 0.2])],
)
def test_sigmas_equal_diffusers(steps, tokens, sigmas):
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

    scheduler = FlowMatchEulerDiscreteScheduler(**KLEIN_SCHEDULER)
    mu = compute_empirical_mu(tokens, steps)
    assert empirical_mu(tokens, steps) == mu
    grid = np.linspace(1.0, 1 / steps, steps) if sigmas is None else sigmas
    scheduler.set_timesteps(sigmas=grid, mu=mu)
    ours = klein_sigmas(KLEIN_SCHEDULER, steps, tokens, sigmas)
    assert torch.equal(ours, scheduler.sigmas)
    assert torch.equal(ours[:-1] * 1000, scheduler.timesteps)
