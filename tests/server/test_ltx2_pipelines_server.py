"""Every new LTX-2 pipeline through OpenAI's `/v1/videos` on a real tiny engine (with its upsampler, distilled
LoRA and a tiny IC-LoRA): the pipeline as an extra field, the control video, the retake's source and the
sound as multipart uploads; bad uploads and windows are 400s naming the field."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ditto.engine import Engine
from ditto.media.video import probe_mp4, write_mp4
from ditto.server import create_app

from .helpers import thread_server

SMALL = {"size": "128x128", "num_frames": "9", "seed": "2"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ditto.tiny.ltx2 import build_tiny, build_tiny_ic_lora

    root = tmp_path_factory.mktemp("pipelines-server")
    build_tiny(root / "ltx", "2.0", with_upsampler=True, with_distilled_lora=True)
    build_tiny_ic_lora(root / "ic.safetensors")
    frames = np.random.default_rng(1).random((9, 128, 128, 3)).astype(np.float32)
    time_axis = np.arange(24000 // 2) / 24000
    sound = (0.3 * np.stack([np.sin(2 * np.pi * 300 * time_axis)] * 2)).astype(np.float32)
    media = {
        "source": write_mp4(root / "source.mp4", frames, 24.0, sound, 24000).read_bytes(),
        "control": write_mp4(root / "control.mp4", frames[:, :64, :64], 24.0).read_bytes(),
    }
    Image.fromarray((frames[0] * 255).astype(np.uint8)).save(root / "first.png")
    media["first"] = (root / "first.png").read_bytes()
    engine = Engine.from_pretrained(
        root / "ltx", device="cpu", dtype="float32", ic_lora=root / "ic.safetensors"
    )
    with thread_server(create_app(engine, tmp_path_factory.mktemp("data"))) as base_url:
        yield base_url, media


def create(base_url: str, data: dict, files: dict | list) -> httpx.Response:
    """Multipart with files; JSON (typed values) without: the server takes no urlencoded form."""
    data = {"prompt": "x", **data}
    if files:
        return httpx.post(f"{base_url}/v1/videos", data=data, files=files, timeout=60)
    return httpx.post(f"{base_url}/v1/videos", json={k: typed(v) for k, v in data.items()}, timeout=60)


def typed(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def wait(base_url: str, video_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        job = httpx.get(f"{base_url}/v1/videos/{video_id}", timeout=10).json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def cases(media: dict) -> dict[str, tuple[dict, dict]]:
    return {
        "hq": ({**SMALL, "num_inference_steps": "2"}, {}),
        "keyframe-interpolation": (
            {**SMALL, "num_inference_steps": "2", "input_reference_frames": "0,8"},
            [
                ("input_reference", ("a.png", media["first"], "image/png")),
                ("input_reference", ("b.png", media["first"], "image/png")),
            ],
        ),
        "ic-lora": (SMALL, {"reference_video": ("c.mp4", media["control"], "video/mp4")}),
        "retake": (
            {"start_time": "0.1", "end_time": "0.3", "num_inference_steps": "2", "regenerate": "audio"},
            {"video": ("s.mp4", media["source"], "video/mp4")},
        ),
        "audio-to-video": (
            {**SMALL, "num_inference_steps": "2"},
            {"audio": ("s.mp4", media["source"], "video/mp4")},
        ),
    }


@pytest.mark.parametrize("pipeline", ["hq", "keyframe-interpolation", "ic-lora", "retake", "audio-to-video"])
def test_each_pipeline_through_v1_videos(server, tmp_path, pipeline: str) -> None:
    base_url, media = server
    data, files = cases(media)[pipeline]
    response = create(base_url, {**data, "pipeline": pipeline}, files)
    assert response.status_code == 200, response.text
    job = wait(base_url, response.json()["id"])
    assert job["status"] == "completed", job["error"]
    path = tmp_path / "out.mp4"
    path.write_bytes(httpx.get(f"{base_url}/v1/videos/{job['id']}/content", timeout=30).content)
    info = probe_mp4(path)
    assert (info.frame_count, info.width, info.height) == (9, 128, 128)
    assert info.audio_codec == "aac" and info.audio_duration > 0.3


def test_keyframe_interpolation_needs_two_keyframes(server) -> None:
    base_url, media = server
    files = {"input_reference": ("a.png", media["first"], "image/png")}
    response = create(base_url, {**SMALL, "pipeline": "keyframe-interpolation"}, files)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input_reference"


@pytest.mark.parametrize(
    ("data", "files", "param"),
    [
        ({"pipeline": "ic-lora", **SMALL}, {"reference_video": ("c.mp4", b"not a video", "video/mp4")},
         "reference_video"),
        ({"pipeline": "ic-lora", **SMALL, "reference_video": "/etc/passwd"}, {}, "reference_video"),
        ({"pipeline": "audio-to-video", **SMALL}, {"audio": ("a.png", b"\x89PNG", "image/png")}, "audio"),
        ({"pipeline": "retake", "start_time": "0.2", "end_time": "5"}, "source", "end_time"),
        ({"pipeline": "retake", "size": "256x256", "start_time": "0", "end_time": "0.2"}, "source", "height"),
        ({"pipeline": "audio-to-video", **SMALL}, {}, "audio"),
    ],
)  # fmt: skip
def test_bad_uploads_and_windows_are_400s_naming_the_field(server, data, files, param: str) -> None:
    base_url, media = server
    if files == "source":
        files = {"video": ("s.mp4", media["source"], "video/mp4")}
    response = create(base_url, data, files)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert "Traceback" not in error["message"] and str(Path.cwd()) not in error["message"]
