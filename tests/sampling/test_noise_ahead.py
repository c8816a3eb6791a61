"""`draw_ahead`: the initial noise drawn on the worker thread is the reference's own draw, bit for bit."""

from __future__ import annotations

import torch

from ditto.sampling.noise import draw_ahead


def test_the_worker_draws_what_torch_randn_draws_from_the_seed() -> None:
    shape = (1, 32, 16, 24)
    for dtype in (torch.bfloat16, torch.float32):
        expected = torch.randn(shape, generator=torch.Generator().manual_seed(5), dtype=dtype)
        assert torch.equal(draw_ahead(shape, 5, dtype).result(), expected)


def test_no_seed_draws_fresh_noise_each_time() -> None:
    first, second = (draw_ahead((4, 8), None, torch.float32).result() for _ in range(2))
    assert first.shape == (4, 8) and not torch.equal(first, second)
