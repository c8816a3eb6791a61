"""Every family's sampling loop offers its latents for previews (StepEvent.latents): a [C, rows, cols] grid
of the first output, a latent cell per patch of the output (LTX-2: the middle latent frame, and the output
frames it stands for), on both LTX-2 samplers; reading it changes nothing in the result."""

from __future__ import annotations

import numpy as np
import pytest

from ditto.engine import Engine


def offered(engine: Engine, **request) -> tuple[list, object]:
    seen = []

    def progress(event):
        latents = event.latents()
        seen.append((event.step, event.total, tuple(latents.grid.shape), latents.frames))

    result = engine.generate(progress=progress, seed=3, num_inference_steps=3, **request)
    return seen, result


@pytest.mark.parametrize(("model", "cell"), [("tiny-flux2-klein", 16), ("tiny-qwen-image", 16)])
def test_image_families_offer_a_grid_per_token(model, cell):
    engine = Engine.from_pretrained(model, device="cpu", dtype="float32")
    seen, result = offered(engine, prompt="a cat", width=96, height=64)
    assert [step for step, *_ in seen] == [1, 2, 3]
    for _, _, shape, frames in seen:
        assert shape[1:] == (64 // cell, 96 // cell) and frames is None
    plain = engine.generate(prompt="a cat", width=96, height=64, seed=3, num_inference_steps=3)
    np.testing.assert_array_equal(result.images, plain.images)  # looking changes nothing


@pytest.mark.parametrize("sampler", ["euler", "res2s"])
def test_ltx2_offers_its_middle_latent_frame(sampler):
    engine = Engine.from_pretrained("tiny-ltx2", device="cpu", dtype="float32")
    seen, _ = offered(engine, prompt="a fox", width=96, height=64, num_frames=17, sampler=sampler)
    assert len(seen) == 3
    for _, _, shape, frames in seen:
        # 17 frames -> 3 latent frames; the middle one (1) stands for output frames 1..8.
        assert shape[1:] == (64 // 32, 96 // 32) and frames == (1, 9)
