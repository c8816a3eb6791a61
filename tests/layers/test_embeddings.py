"""Shared timestep/caption embeddings and the GELU feed-forward against diffusers' modules."""

from __future__ import annotations

import math

import pytest
import torch

from ditto.layers.embeddings import CaptionProjection, TimestepMLP, timestep_sinusoid
from ditto.layers.mlp import GeluFeedForward


def test_timestep_sinusoid_formula() -> None:
    t = torch.tensor([0.0, 1.0, 250.5, 999.0])
    emb = timestep_sinusoid(t, 8)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(4, dtype=torch.float64) / 4)
    angles = t.double()[:, None] * freqs
    expected = torch.cat([angles.cos(), angles.sin()], dim=-1)  # flip_sin_to_cos: cos first
    assert (emb.double() - expected).abs().max().item() <= 1e-4  # float32 angles up to ~1e3 rad


def test_matches_diffusers_modules() -> None:
    embeddings = pytest.importorskip("diffusers.models.embeddings")
    attention = pytest.importorskip("diffusers.models.attention")
    t = torch.tensor([3.0, 500.0, 999.5])
    expected = embeddings.get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0)
    assert torch.equal(timestep_sinusoid(t, 256), expected)

    torch.manual_seed(0)
    pairs = [
        (embeddings.TimestepEmbedding(256, 32), TimestepMLP(256, 32), torch.randn(3, 256)),
        (embeddings.PixArtAlphaTextProjection(12, 32), CaptionProjection(12, 32), torch.randn(2, 5, 12)),
        (
            attention.FeedForward(16, activation_fn="gelu-approximate"),
            GeluFeedForward(16),
            torch.randn(2, 5, 16),
        ),
    ]
    for reference, ours, x in pairs:
        ours.load_state_dict(reference.state_dict(), strict=True)
        with torch.no_grad():
            assert torch.equal(ours(x), reference(x)), type(reference).__name__
