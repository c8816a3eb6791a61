"""The server's queueing, cancel, 429 and error paths, against a fake engine the test controls.

The app runs under a real uvicorn on 127.0.0.1 in this process, and the official openai client talks to
it, so these are real HTTP round trips; only the engine is a stand-in (tests/server/fake_engine.py).
"""

from __future__ import annotations

import base64
import io
import time

import httpx
import openai
import pytest
from PIL import Image

from ditto.media.video import probe_mp4
from ditto.server import create_app

from .fake_engine import FakeEngine
from .helpers import thread_server

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

MAX_QUEUE = 3


@pytest.fixture(scope="module")
def video_server(tmp_path_factory):
    engine = FakeEngine("video", step_seconds=0.02)
    app = create_app(
        engine, tmp_path_factory.mktemp("fake-video"), max_queue=MAX_QUEUE, max_body_bytes=1 << 20
    )
    with thread_server(app) as base_url:
        yield base_url, engine


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    engine = FakeEngine("image")
    app = create_app(engine, tmp_path_factory.mktemp("fake-image"), max_body_bytes=1 << 20)
    with thread_server(app) as base_url:
        yield base_url, engine


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=30)


def wait_status(api: openai.OpenAI, video_id: str, timeout: float = 20.0, interval: float = 0.02) -> list:
    """Poll until the job is finished; returns every Video seen (to check progress)."""
    seen = [api.videos.retrieve(video_id)]
    deadline = time.monotonic() + timeout
    while seen[-1].status not in ("completed", "failed"):
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(interval)
        seen.append(api.videos.retrieve(video_id))
    return seen


def png_size(b64: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64))).size


def test_video_lifecycle(video_server, tmp_path):
    base_url, engine = video_server
    api = client(base_url)
    video = api.videos.create(
        model="fake", prompt="a fox", size="64x32", seconds="4", extra_body={"num_frames": 17, "seed": 3}
    )
    assert video.status == "queued" and video.progress == 0 and video.size == "64x32"
    seen = wait_status(api, video.id)
    progress = [v.progress for v in seen]
    assert progress == sorted(progress) and seen[-1].status == "completed" and progress[-1] == 100
    assert engine.calls[-1]["seed"] == 3 and engine.calls[-1]["num_frames"] == 17
    api.videos.download_content(video.id).write_to_file(tmp_path / "out.mp4")
    info = probe_mp4(tmp_path / "out.mp4")
    assert (info.width, info.height, info.frame_count, info.audio_codec) == (64, 32, 17, "aac")
    assert video.id in [v.id for v in api.videos.list()]
    assert api.videos.delete(video.id).deleted
    with pytest.raises(openai.NotFoundError):
        api.videos.retrieve(video.id)


def test_seconds_become_frames(video_server):
    base_url, engine = video_server
    video = client(base_url).videos.create(prompt="x", seconds="1", size="64x32")
    assert video.seconds == "1"
    assert wait_status(client(base_url), video.id)[-1].status == "completed"
    assert engine.calls[-1]["num_frames"] == 25  # 1 s at 24 fps plus the first frame


def test_cancel_queued_and_running(video_server):
    base_url, engine = video_server
    api = client(base_url)
    engine.gate.clear()
    engine.started.clear()
    try:
        running = api.videos.create(prompt="running")
        queued = api.videos.create(prompt="queued")
        assert engine.started.wait(5)
        assert api.videos.retrieve(running.id).status == "in_progress"
        assert api.videos.retrieve(queued.id).status == "queued"
        calls = len(engine.calls)
        assert api.videos.delete(queued.id).deleted
        assert api.videos.delete(running.id).deleted
    finally:
        engine.gate.set()
    time.sleep(0.3)
    assert len(engine.calls) == calls  # the queued job never ran
    for video_id in (running.id, queued.id):
        with pytest.raises(openai.NotFoundError):
            api.videos.retrieve(video_id)
    assert 'ditto_jobs_finished_total{outcome="cancelled"} 1' in httpx.get(f"{base_url}/metrics").text


def test_full_queue_answers_429(video_server):
    base_url, engine = video_server
    api = client(base_url)
    engine.gate.clear()
    engine.started.clear()
    try:
        jobs = [api.videos.create(prompt="first")]
        assert engine.started.wait(5)
        jobs += [api.videos.create(prompt=f"wait {i}") for i in range(MAX_QUEUE)]
        with pytest.raises(openai.RateLimitError) as caught:
            api.videos.create(prompt="one too many")
        assert caught.value.response.headers["retry-after"].isdigit()
        assert caught.value.body["code"] == "queue_full"
        assert "ditto_queue_depth 3" in httpx.get(f"{base_url}/metrics").text
    finally:
        engine.gate.set()
    assert all(wait_status(api, job.id)[-1].status == "completed" for job in jobs)
    assert httpx.get(f"{base_url}/health").json()["queue_depth"] == 0


def test_images_generate_and_edit(image_server):
    base_url, engine = image_server
    api = client(base_url)
    result = api.images.generate(model="fake", prompt="cat", size="96x64", n=2, response_format="b64_json")
    assert [png_size(item.b64_json) for item in result.data] == [(96, 64), (96, 64)]
    url = api.images.generate(prompt="cat", size="64x32", response_format="url").data[0].url
    assert Image.open(io.BytesIO(httpx.get(url).content)).size == (64, 32)
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(picture, format="PNG")
    edited = api.images.edit(
        image=[("a.png", picture.getvalue(), "image/png"), ("b.png", picture.getvalue(), "image/png")],
        prompt="make it blue",
        size="32x32",
        extra_body={"seed": 5, "num_inference_steps": 2},
    )
    assert png_size(edited.data[0].b64_json) == (32, 32)
    assert len(engine.calls[-1]["image"]) == 2 and engine.calls[-1]["seed"] == 5


def test_engine_validation_reaches_the_client(image_server):
    base_url, _ = image_server
    with pytest.raises(openai.BadRequestError) as caught:
        client(base_url).images.generate(prompt="cat", extra_body={"num_inference_steps": 0})
    assert caught.value.body == {
        "message": "num_inference_steps=0 must be an integer >= 1",
        "type": "invalid_request_error",
        "param": "num_inference_steps",
        "code": "invalid_parameter",
    }


def test_sizes_snap_to_the_family_unless_strict(image_server, tmp_path):
    base_url, engine = image_server
    result = client(base_url).images.generate(prompt="cat", size="100x70", response_format="b64_json")
    assert png_size(result.data[0].b64_json) == (96, 64)
    assert (result.size, result.model_extra["size_requested"]) == ("96x64", "100x70")
    assert (engine.calls[-1]["width"], engine.calls[-1]["height"]) == (96, 64)
    strict = create_app(FakeEngine("image"), tmp_path / "strict", strict_size=True)
    with thread_server(strict) as strict_url, pytest.raises(openai.BadRequestError) as caught:
        client(strict_url).images.generate(prompt="cat", size="100x64")
    assert caught.value.body == {
        "message": "width=100 is not a multiple of 32; try 96",
        "type": "invalid_request_error",
        "param": "width",
        "code": "invalid_parameter",
    }


def test_video_model_refuses_image_routes(video_server):
    with pytest.raises(openai.BadRequestError, match="makes videos"):
        client(video_server[0]).images.generate(prompt="cat")


JSON = {"content-type": "application/json"}
BAD_REQUESTS = [
    # (method, path, keyword arguments for httpx, status, param)
    ("POST", "/v1/images/generations", {"content": b"{not json", "headers": JSON}, 400, None),
    ("POST", "/v1/images/generations", {"content": b'{"prompt": "a"}'}, 415, None),
    ("POST", "/v1/images/generations", {"json": ["a list"]}, 400, None),
    ("POST", "/v1/images/generations", {"json": {"size": "64x64"}}, 400, "prompt"),
    ("POST", "/v1/images/generations", {"json": {"prompt": 3}}, 400, "prompt"),
    ("POST", "/v1/images/generations", {"json": {"prompt": "a", "n": "two"}}, 400, "n"),
    ("POST", "/v1/images/generations", {"json": {"prompt": "a", "n": -1}}, 400, "n"),
    ("POST", "/v1/images/generations", {"json": {"prompt": "a", "size": "big"}}, 400, "size"),
    ("POST", "/v1/images/generations", {"json": {"prompt": "a", "seed": "x"}}, 400, "seed"),
    (
        "POST",
        "/v1/images/generations",
        {"json": {"prompt": "a", "guidance_scale": [1]}},
        400,
        "guidance_scale",
    ),
    ("POST", "/v1/images/generations", {"json": {"prompt": "a", "bogus": 1}}, 400, "bogus"),
    ("POST", "/v1/images/generations", {"json": {"prompt": "a", "model": "dall-e-3"}}, 404, "model"),
    (
        "POST",
        "/v1/images/edits",
        {"data": {"prompt": "a"}, "files": {"image": b"not an image"}},
        400,
        "image",
    ),
    ("POST", "/v1/images/edits", {"data": {"prompt": "a"}, "files": {"mask": b"x"}}, 400, "image"),
    (
        "POST",
        "/v1/images/generations",
        {"content": b"{" + b" " * (2 << 20) + b"}", "headers": JSON},
        413,
        None,
    ),
    ("GET", "/v1/videos/video_nope", {}, 404, "video_id"),
    ("GET", "/v1/nothing-here", {}, 404, None),
]


@pytest.mark.parametrize("method, path, kwargs, status, param", BAD_REQUESTS)
def test_bad_requests_get_openai_errors(image_server, method, path, kwargs, status, param):
    base_url, _ = image_server
    response = httpx.request(method, f"{base_url}{path}", timeout=10, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["param"] == param
    assert response.headers["x-request-id"].startswith("req_")
    assert httpx.get(f"{base_url}/health").json()["status"] == "ok"


def test_oversized_body_without_length_is_refused(image_server):
    base_url, _ = image_server
    chunks = (b"x" * 65536 for _ in range(40))  # streamed (chunked): refused while it arrives
    response = httpx.post(f"{base_url}/v1/images/generations", content=chunks, headers=JSON)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert httpx.get(f"{base_url}/health").status_code == 200


def test_video_errors(video_server):
    base_url, _ = video_server
    api = client(base_url)
    with pytest.raises(openai.BadRequestError, match="num_frames=10 is not 8k\\+1; try 9"):
        api.videos.create(prompt="x", extra_body={"num_frames": 10})
    with pytest.raises(openai.BadRequestError, match="is not a readable image"):
        api.videos.create(prompt="x", input_reference=("ref.png", b"GIF89a junk", "image/png"))
    with pytest.raises(openai.BadRequestError, match="seconds"):
        api.videos.create(prompt="x", seconds="-4")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        api.videos.download_content("video_unknown")
    with pytest.raises(openai.NotFoundError):
        api.videos.delete("video_unknown")


def test_models_health_metrics(video_server):
    base_url, _ = video_server
    assert [m.id for m in client(base_url).models.list()] == ["fake"]
    health = httpx.get(f"{base_url}/health").json()
    assert health["status"] == "ok" and health["output_kind"] == "video"
    text = httpx.get(f"{base_url}/metrics").text
    for name in (
        "ditto_queue_depth",
        'ditto_jobs{state="completed"}',
        'ditto_stage_seconds_sum{stage="denoise"}',
    ):
        assert name in text
