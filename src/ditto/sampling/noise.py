"""The initial noise, drawn ahead on a worker thread while the prompt is encoded.

The references draw it on the CPU in the model dtype (diffusers' randn_tensor with a CPU generator), and
ditto draws the same tensor the same way. On the H100 host PyTorch's bfloat16 CPU sampler took 13 ms for
FLUX.2 Klein's 1024² noise (2026-11-23), while the text encoder, which runs first, mostly leaves the CPU
waiting on the GPU. torch.randn releases the GIL, so the draw overlaps the encoding. (Drawing in float32
and rounding is faster but not the same tensor on every CPU: tried and backed out, benchmarks/NOTES.md.)
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ditto-noise")


def _draw(shape: tuple[int, ...], seed: int | None, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator("cpu")
    generator.manual_seed(seed) if seed is not None else generator.seed()
    return torch.randn(shape, generator=generator, device="cpu", dtype=dtype)


def draw_ahead(shape: tuple[int, ...], seed: int | None, dtype: torch.dtype) -> Future[torch.Tensor]:
    """`torch.randn(shape, dtype=dtype)` from a CPU generator seeded `seed` (a random seed if None), started
    now on the worker thread; `.result()` waits for it."""
    return _WORKER.submit(_draw, tuple(shape), seed, dtype)
