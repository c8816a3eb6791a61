"""Jobs of every kind: cancel (POST .../cancel, DELETE), an image client that disconnects, the job timeout,
live progress and its Server-Sent Events stream, the field and limit description, retention as a client
sees it, the OpenAPI document and the new metrics; against a fake engine the test controls."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from ditto.server import create_app
from ditto.server.limits import Limits
from ditto.server.retention import Retention

from .fake_engine import FakeEngine
from .helpers import thread_server

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
SMALL = {"prompt": "x", "size": "64x32"}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    engine = FakeEngine("video", step_seconds=0.02)
    app = create_app(
        engine, tmp_path_factory.mktemp("video"), limits=Limits(job_timeout_s=2.0, max_steps=1000)
    )
    with thread_server(app) as base_url:
        yield base_url, engine


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    engine = FakeEngine("image", step_seconds=0.02)
    app = create_app(engine, tmp_path_factory.mktemp("image"), retention=Retention(max_bytes=1))
    with thread_server(app) as base_url:
        yield base_url, engine


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)
    return value


def job(base_url: str, job_id: str) -> dict:
    return httpx.get(f"{base_url}/v1/jobs/{job_id}").json()


def test_cancel_keeps_the_record_and_frees_the_worker(video):
    base_url, engine = video
    engine.gate.clear()
    try:
        running = httpx.post(f"{base_url}/v1/videos", json={**SMALL, "num_inference_steps": 50}).json()
        queued = httpx.post(f"{base_url}/v1/videos", json=SMALL).json()
        wait_for(lambda: job(base_url, running["id"])["status"] == "in_progress")
        assert job(base_url, queued["id"])["queue_position"] == 0
        cancelled = httpx.post(f"{base_url}/v1/jobs/{queued['id']}/cancel").json()
        assert cancelled["status"] == "failed" and cancelled["error"]["code"] == "cancelled"
    finally:
        engine.gate.set()
    stopped = httpx.post(f"{base_url}/v1/videos/{running['id']}/cancel").json()
    assert stopped["status"] == "failed" and stopped["error"]["code"] == "cancelled", stopped
    after = httpx.post(f"{base_url}/v1/videos", json=SMALL).json()
    assert wait_for(lambda: job(base_url, after["id"])["status"] == "completed")
    metrics = httpx.get(f"{base_url}/metrics").text
    assert 'ditto_cancellations_total{reason="cancelled"} 2' in metrics
    assert "ditto_queue_wait_seconds_count" in metrics and "ditto_stored_bytes" in metrics


def test_a_job_past_its_timeout_is_stopped(video):
    base_url, _ = video
    slow = httpx.post(f"{base_url}/v1/videos", json={**SMALL, "num_inference_steps": 1000}).json()
    done = wait_for(lambda: (j := job(base_url, slow["id"]))["status"] == "failed" and j, timeout=20)
    assert done["error"]["code"] == "timeout" and "job_timeout_s=2" in done["error"]["message"]
    assert 'ditto_cancellations_total{reason="timeout"} 1' in httpx.get(f"{base_url}/metrics").text


def test_live_progress_and_its_event_stream(video):
    base_url, engine = video
    created = httpx.post(f"{base_url}/v1/videos", json={**SMALL, "num_inference_steps": 30, "seed": 7}).json()
    assert created["seed"] == 7
    live = wait_for(
        lambda: (now := job(base_url, created["id"]).get("live") or {}).get("step", 0) >= 3 and now
    )
    assert live["stage"] == "denoise" and live["total"] == 30 and live["elapsed_s"] > 0
    assert live["eta_s"] is not None and "denoise" in live["stages"]
    events = []
    with httpx.stream("GET", f"{base_url}/v1/jobs/{created['id']}/events", timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "completed" and events[-1]["timings"]["denoise"] > 0
    steps = [e["live"]["step"] for e in events if e["live"]]
    assert steps == sorted(steps)


def test_a_drawn_seed_is_kept_and_returned(video):
    base_url, engine = video
    created = httpx.post(f"{base_url}/v1/videos", json=SMALL).json()
    assert isinstance(created["seed"], int)
    wait_for(lambda: job(base_url, created["id"])["status"] == "completed")
    assert job(base_url, created["id"])["params"]["seed"] == created["seed"] == engine.calls[-1]["seed"]


def test_an_image_client_that_disconnects_cancels_its_job(image):
    base_url, engine = image
    engine.gate.clear()
    engine.started.clear()
    host, port = base_url.removeprefix("http://").split(":")
    body = json.dumps({**SMALL, "num_inference_steps": 100}).encode()
    head = "POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert engine.started.wait(10)
    running = wait_for(lambda: httpx.get(f"{base_url}/health").json()["running"])
    sock.close()  # the client goes away
    engine.gate.set()
    stopped = wait_for(lambda: (j := job(base_url, running))["status"] == "failed" and j)
    assert stopped["error"]["code"] == "cancelled" and "disconnected" in stopped["error"]["message"]
    ok = httpx.post(f"{base_url}/v1/images/generations", json={**SMALL, "num_inference_steps": 1}, timeout=20)
    assert ok.status_code == 200
    assert 'reason="disconnected"} 1' in httpx.get(f"{base_url}/metrics").text


def test_purged_outputs_say_so(image):
    base_url, _ = image
    first = httpx.post(f"{base_url}/v1/images/generations", json={**SMALL, "response_format": "url"}).json()
    assert first["data"][0]["url"]  # held for this response, purged afterwards (the store bound is 1 byte)
    httpx.post(f"{base_url}/v1/images/generations", json=SMALL).raise_for_status()
    gone = wait_for(lambda: job(base_url, first["id"])["purged"])
    assert gone
    response = httpx.get(first["data"][0]["url"])
    assert response.status_code == 410 and response.json()["error"]["code"] == "purged"


def test_fields_and_limits_for_a_form(image):
    base_url, _ = image
    described = httpx.get(f"{base_url}/v1/fields").json()
    names = {field["name"] for field in described["fields"]}
    assert {"prompt", "seed", "num_inference_steps", "guidance_scale"} <= names
    assert described["limits"]["max_steps"] == 100 and described["output_kind"] == "image"


def test_openapi_describes_every_request_field(tmp_path):
    engine = FakeEngine("video")
    engine.family = "ltx2"
    with thread_server(create_app(engine, tmp_path / "d")) as base_url:
        document = httpx.get(f"{base_url}/openapi.json").json()
        assert httpx.get(f"{base_url}/docs").status_code == 200
        assert httpx.get(f"{base_url}/redoc").status_code == 200
    schemas = document["components"]["schemas"]
    video_body = document["paths"]["/v1/videos"]["post"]["requestBody"]["content"]
    assert set(video_body) == {"application/json", "multipart/form-data"}
    fields = schemas["VideoCreateRequest"]["properties"]
    for name in ("prompt", "seconds", "size", "seed", "num_inference_steps", "negative_prompt", "fps",
                 "sampler", "pipeline", "stg_scale"):  # fmt: skip
        assert name in fields and fields[name].get("description"), name
    assert fields["sampler"]["anyOf"][0]["enum"] == ["euler", "res2s"]
    assert "ImageGenerationRequest" in schemas and "ImageEditRequest" in schemas
    edit = document["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert edit["schema"]["allOf"][1]["properties"]["image"]["items"]["format"] == "binary"


def test_progress_is_logged_not_drawn(video, caplog):
    base_url, _ = video
    with caplog.at_level("INFO", logger="ditto.server.progress"):
        created = httpx.post(f"{base_url}/v1/videos", json={**SMALL, "num_inference_steps": 3}).json()
        wait_for(lambda: job(base_url, created["id"])["status"] == "completed")
    lines = [r.getMessage() for r in caplog.records if created["id"] in r.getMessage()]
    assert any("denoise step 3/3" in line for line in lines), lines


def test_worker_threads_are_not_left_behind(tmp_path):
    before = threading.active_count()
    with thread_server(create_app(FakeEngine("image"), tmp_path / "d")):
        pass
    assert wait_for(lambda: threading.active_count() <= before, timeout=10)
