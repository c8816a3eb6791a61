"""OpenAI's videos API `input_reference` on a real tiny LTX-2 engine: the image conditions frame 0; several,
with `input_reference_frames`, are keyframes (bad frames: a 400 naming the field)."""

from __future__ import annotations

import io
import time

import httpx
import openai
import pytest
from PIL import Image

from ditto.engine import Engine
from ditto.media.video import probe_mp4
from ditto.server import create_app
from ditto.server.limits import Limits
from ditto.tiny.ltx2 import build_tiny

from .helpers import thread_server

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
FINISHED = ("completed", "failed")
VIDEO = {"size": "64x64", "extra_body": {"num_frames": 9, "num_inference_steps": 2, "seed": 1}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "ltx2"
    build_tiny(folder, "2.0")
    engine = Engine.from_pretrained(folder, device="cpu", dtype="float32")
    with thread_server(create_app(engine, tmp_path_factory.mktemp("data"))) as base_url:
        yield openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60), engine


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_input_reference_becomes_the_first_frame(server, tmp_path) -> None:
    api, _ = server
    video = api.videos.create(prompt="x", input_reference=("ref.png", png(96, 64), "image/png"), **VIDEO)
    deadline = time.monotonic() + 120
    while video.status not in ("completed", "failed"):
        assert time.monotonic() < deadline, video
        time.sleep(0.1)
        video = api.videos.retrieve(video.id)
    assert video.status == "completed", video.error
    path = tmp_path / "out.mp4"
    path.write_bytes(api.videos.download_content(video.id).read())
    info = probe_mp4(path)
    assert (info.frame_count, info.width, info.height) == (9, 64, 64)


def test_a_bad_image_option_is_a_400_naming_it(server) -> None:
    api, _ = server
    body = {**VIDEO["extra_body"], "image_crf": 99}
    with pytest.raises(openai.BadRequestError) as caught:
        api.videos.create(
            prompt="x", input_reference=("ref.png", png(64, 64), "image/png"), size="64x64", extra_body=body
        )
    assert caught.value.body["param"] == "image_crf", caught.value.body


def test_prompt_tokens_are_counted_with_the_model_tokenizer(server, tmp_path) -> None:
    _, engine = server
    app = create_app(engine, tmp_path / "data", limits=Limits.for_family("ltx2", max_prompt_tokens=20))
    with thread_server(app) as base_url:
        api = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as caught:
            api.videos.create(prompt="a fox in the snow " * 20, size="64x64")
        assert (
            caught.value.body["param"] == "prompt" and "max_prompt_tokens=20" in caught.value.body["message"]
        )
        with pytest.raises(openai.BadRequestError, match="negative_prompt"):
            api.videos.create(prompt="a fox", size="64x64", extra_body={"negative_prompt": "blurry, " * 40})
        assert api.videos.create(prompt="a fox in the snow", **VIDEO).status == "queued"


def keyframes(base_url: str, frames: str | None, count: int = 2, **data: str) -> httpx.Response:
    """Multipart: `count` input_reference images, their input_reference_frames (when given)."""
    files = [("input_reference", (f"k{k}.png", png(64, 64), "image/png")) for k in range(count)]
    fields = {"prompt": "x", "size": "64x64", "num_frames": "9", "num_inference_steps": "2", **data}
    if frames is not None:
        fields["input_reference_frames"] = frames
    return httpx.post(f"{base_url}/v1/videos", data=fields, files=files, timeout=60)


def test_keyframes_at_their_frames_are_recorded(server) -> None:
    api, _ = server
    base_url = str(api.base_url).removesuffix("/v1/")
    response = keyframes(base_url, "0, 8")
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 120
    while (job := httpx.get(f"{base_url}/v1/jobs/{response.json()['id']}").json())["status"] not in FINISHED:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "completed", job["error"]
    assert job["params"]["image_frames"] == "0, 8" and "image" not in job["params"]  # no server path shown


@pytest.mark.parametrize(
    ("frames", "count", "says"),
    [
        ("0,x", 2, "image_frames='0,x' is not a list of frame indices"),
        ("0", 2, "image_frames='0' names 1 frame for 2 images; give 2 frame indices"),
        ("0,9", 2, "image_frames='0,9' has frame 9, outside the video (0..8 for num_frames=9)"),
        ("0,0", 2, "image_frames='0,0' gives frame 0 more than once"),
        ("0,8", 0, "image_frames='0,8' names 2 frames for 0 images"),
    ],
)
def test_bad_input_reference_frames_are_400s_naming_the_field(server, frames, count, says) -> None:
    api, _ = server
    base_url = str(api.base_url).removesuffix("/v1/")
    if count:
        response = keyframes(base_url, frames, count)
    else:  # JSON: no file, frames alone
        body = {"prompt": "x", "size": "64x64", "num_frames": 9, "input_reference_frames": frames}
        response = httpx.post(f"{base_url}/v1/videos", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input_reference_frames", error
    assert error["message"].startswith(f"input_reference_frames: {says}"), error["message"]
    assert "Traceback" not in error["message"] and "uploads" not in error["message"]


def test_input_reference_frames_must_be_text(server) -> None:
    api, _ = server
    base_url = str(api.base_url).removesuffix("/v1/")
    body = {"prompt": "x", "input_reference_frames": 8}
    error = httpx.post(f"{base_url}/v1/videos", json=body, timeout=60).json()["error"]
    assert error["param"] == "input_reference_frames" and "input_reference_frames=8" in error["message"]
