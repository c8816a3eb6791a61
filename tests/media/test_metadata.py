"""Every saved file records its request: PNG text chunks, MP4 tags, JPEG/WebP EXIF; each file of a batch
with its own prompt; read back by read_metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ditto import __version__
from ditto.media.metadata import read_metadata
from ditto.result import Result

REQUEST = {
    "prompt": ["a red fox — in the snow", "ein Wal"],
    "negative_prompt": ["blurry", "dark"],
    "num_inference_steps": 4,
    "guidance_scale": 3.5,
    "image": ["a.png", "b.png"],
    "model": "tiny-x",
    "ditto_version": __version__,
}


def images_result(count: int) -> Result:
    images = np.random.RandomState(0).rand(count, 16, 24, 3).astype(np.float32)
    return Result(images=images, seed=1234, request=dict(REQUEST))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_each_image_records_its_own_prompt(tmp_path: Path, suffix: str) -> None:
    paths = images_result(4).save(tmp_path / f"out{suffix}")
    for index, path in enumerate(paths):
        meta = read_metadata(path)
        k = index // 2  # two prompts, two images each, prompt by prompt
        assert (
            meta["prompt"] == REQUEST["prompt"][k]
            and meta["negative_prompt"] == REQUEST["negative_prompt"][k]
        )
        assert (
            meta["seed"] == "1234" and meta["num_inference_steps"] == "4" and meta["guidance_scale"] == "3.5"
        )
        assert meta["image"] == '["a.png", "b.png"]' and meta["model"] == "tiny-x"
        assert (meta["batch_index"], meta["batch_size"]) == (str(index), "4")
        assert meta["software"] == f"ditto {__version__}"


def test_an_mp4_records_its_request(tmp_path: Path) -> None:
    frames = np.random.RandomState(1).rand(3, 32, 32, 3).astype(np.float32)
    result = Result(frames=frames, frame_rate=8.0, seed=7, request={**REQUEST, "prompt": "a red fox — ü"})
    (path,) = result.save(tmp_path / "fox.mp4")
    meta = read_metadata(path)
    assert meta["prompt"] == "a red fox — ü" and meta["seed"] == "7" and meta["num_inference_steps"] == "4"
    assert meta["software"] == f"ditto {__version__}" and "encoder" not in meta


def test_a_result_without_a_request_writes_none(tmp_path: Path) -> None:
    (path,) = Result(images=np.zeros((1, 8, 8, 3), np.float32)).save(tmp_path / "plain.png")
    assert read_metadata(path) == {}
