"""`ditto.sampling.noise.randn` equals `torch.randn` in the narrow dtype bit for bit, generator state included."""

from __future__ import annotations

import pytest
import torch

from ditto.sampling.noise import randn


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("shape", [(1, 128, 64, 64), (2, 16, 3, 5), (1, 35), (3,), (2, 4096, 128)])
def test_same_tensor_and_generator_state_as_torch_randn(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    for seed in (0, 7):
        ours_gen, theirs_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        ours = randn(shape, ours_gen, dtype, "cpu")
        theirs = torch.randn(shape, generator=theirs_gen, dtype=dtype)
        assert ours.dtype == dtype and ours.shape == torch.Size(shape)
        assert torch.equal(ours, theirs)
        # The next draw (LTX-2 draws video then audio from one generator) must match too.
        assert torch.equal(
            randn((5, 7), ours_gen, dtype, "cpu"), torch.randn(5, 7, generator=theirs_gen, dtype=dtype)
        )
