"""The Python API on the tiny LTX-2 model: output types, Result.save, timings, seeds, progress, batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ditto.errors import InvalidParameter, JobCancelled
from ditto.media.video import probe_mp4

from helpers.ltx2 import ditto_engine

SMALL = dict(prompt="a red fox", height=64, width=64, num_frames=9, num_inference_steps=2)


@pytest.fixture(scope="module")
def engine():
    return ditto_engine("2.0")


def test_np_output_shapes_ranges_and_timings(engine) -> None:
    result = engine.generate(**SMALL, seed=3)
    assert result.frames.dtype == np.float32 and result.frames.shape == (9, 64, 64, 3)
    assert 0.0 <= result.frames.min() and result.frames.max() <= 1.0
    assert result.audio.dtype == np.float32 and result.audio.shape[0] == 2
    assert result.sample_rate == 24000 and result.frame_rate == 24.0
    # "validate": Engine.generate checks the request (and records it) before the pipeline's own stages.
    assert list(result.timings) == ["validate", "encode_text", "denoise", "decode"]


def test_same_seed_same_video_other_seed_other_video(engine) -> None:
    first, again, other = (engine.generate(**SMALL, seed=s, output_type="latent") for s in (5, 5, 6))
    assert torch.equal(first.latents["video"], again.latents["video"])
    assert torch.equal(first.latents["audio"], again.latents["audio"])
    assert not torch.equal(first.latents["video"], other.latents["video"])


def test_latent_output_has_diffusers_shapes(engine) -> None:
    latents = engine.generate(**SMALL, seed=1, output_type="latent").latents
    assert tuple(latents["video"].shape) == (1, 16, 2, 2, 2)  # [B, C, F, H, W]
    assert tuple(latents["audio"].shape) == (1, 4, 9, 4)  # [B, C, L, M]


def test_pil_output_and_save(engine, tmp_path: Path) -> None:
    result = engine.generate(**SMALL, seed=1)
    paths = result.save(tmp_path / "fox.mp4")
    info = probe_mp4(paths[0])
    assert info.frame_count == 9 and info.audio_codec == "aac"
    pil = engine.generate(**SMALL, seed=1, output_type="pil")
    assert len(pil.frames) == 9 and pil.frames[0].size == (64, 64)


def test_batch_and_videos_per_prompt(engine, tmp_path: Path) -> None:
    result = engine.generate(**{**SMALL, "prompt": ["a", "b"]}, num_videos_per_prompt=2, seed=1)
    assert len(result.batch_frames) == 4 and len(result.batch_audio) == 4
    paths = result.save(tmp_path / "clip.mp4")
    assert [p.name for p in paths] == ["clip-0.mp4", "clip-1.mp4", "clip-2.mp4", "clip-3.mp4"]


def test_progress_reports_every_step_and_can_cancel(engine) -> None:
    seen: list[tuple[str, int, int]] = []
    engine.generate(
        **SMALL,
        seed=1,
        output_type="latent",
        progress=lambda event: seen.append((event.stage, event.step, event.total)),
    )
    assert seen == [("denoise", 1, 2), ("denoise", 2, 2)]

    def cancel(event) -> None:
        raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        engine.generate(**SMALL, seed=1, progress=cancel)


def test_bad_request_raises_invalid_parameter_before_work(engine) -> None:
    with pytest.raises(InvalidParameter, match="num_frames=10 is not 8k\\+1; try 9"):
        engine.generate(**{**SMALL, "num_frames": 10})
