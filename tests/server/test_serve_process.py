"""`ditto serve` as a real process on 127.0.0.1 with the tiny models, driven by the official openai client.

Few processes on purpose (each start imports torch and loads a model): one tiny-ltx2 server for the video
routes, one tiny-flux2-klein server for the image routes, and one data dir that is killed and restarted.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from ditto.media.video import probe_mp4
from ditto.registry import family_by_tiny_name
from ditto.server.store import JobStore

from .helpers import ServeProcess, free_port
from .test_api_fake_engine import client, png_size, wait_status

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

# Tiny requests: 64x64, 9 frames, 2 steps keep one video job well under a second of CPU.
VIDEO = {"size": "64x64", "extra_body": {"num_frames": 9, "num_inference_steps": 2, "seed": 1, "fps": 24}}
# uvicorn finishes its shutdown, then re-raises SIGTERM so a supervisor sees why the process ended.
CLEAN_EXIT = (0, -signal.SIGTERM)
IMAGE = {"size": "64x64", "extra_body": {"num_inference_steps": 2, "seed": 1}}
STARTUP_S = 10  # importing torch and ditto on 2 shared cores, before the check itself


def wait_done(api: openai.OpenAI, video_id: str) -> list:
    """Poll gently: on 2 shared cores a tight poll loop steals time from the job it waits for."""
    return wait_status(api, video_id, timeout=180, interval=0.1)


def wait_running(api: openai.OpenAI, video_id: str, min_progress: int = 0) -> None:
    deadline = time.monotonic() + 120
    while (video := api.videos.retrieve(video_id)).status != "in_progress" or video.progress < min_progress:
        assert video.status in ("queued", "in_progress") and time.monotonic() < deadline, video
        time.sleep(0.05)


def needs_tiny(name: str):
    return pytest.mark.skipif(
        family_by_tiny_name(name) is None,
        reason=f"{name} is not a registered tiny model yet (ditto.registry)",
    )


@pytest.fixture(scope="module")
def ltx_server(tmp_path_factory):
    server = ServeProcess(
        "tiny-ltx2",
        tmp_path_factory.mktemp("ltx") / "data",
        "--max-queue",
        "32",
        "--max-body-mb",
        "4",
        "--max-steps",
        "1000",
    ).wait()
    yield server
    assert server.stop() in CLEAN_EXIT, server.log_text()[-3000:]


@pytest.fixture(scope="module")
def flux_server(tmp_path_factory):
    server = ServeProcess("tiny-flux2-klein", tmp_path_factory.mktemp("flux") / "data").wait()
    yield server
    assert server.stop() in CLEAN_EXIT, server.log_text()[-3000:]


def test_video_create_progress_download_list_delete(ltx_server, tmp_path):
    api = client(ltx_server.base_url)
    video = api.videos.create(model="tiny-ltx2", prompt="a fox in the snow", **VIDEO)
    assert video.status == "queued" and video.size == "64x64"
    seen = wait_done(api, video.id)
    progress = [v.progress for v in seen]
    assert seen[-1].status == "completed", seen[-1].error
    assert progress == sorted(progress) and progress[-1] == 100
    api.videos.download_content(video.id).write_to_file(tmp_path / "fox.mp4")
    info = probe_mp4(tmp_path / "fox.mp4")
    assert (info.width, info.height, info.frame_count, info.video_codec) == (64, 64, 9, "h264")
    assert info.audio_codec == "aac" and info.audio_channels >= 1 and info.audio_duration > 0
    assert video.id in [v.id for v in api.videos.list()]
    assert api.videos.delete(video.id).deleted
    with pytest.raises(openai.NotFoundError):
        api.videos.retrieve(video.id)


def test_delete_cancels_a_running_job(ltx_server):
    api = client(ltx_server.base_url)
    slow = api.videos.create(
        prompt="slow", size="64x64", extra_body={"num_frames": 17, "num_inference_steps": 400}
    )
    wait_running(api, slow.id)
    assert api.videos.delete(slow.id).deleted
    after = api.videos.create(prompt="after the cancel", **VIDEO)
    assert wait_done(api, after.id)[-1].status == "completed"  # the worker moved on
    assert 'outcome="cancelled"} 1' in httpx.get(f"{ltx_server.base_url}/metrics").text
    assert "job " + slow.id + " cancelled" in ltx_server.log_text()


def test_input_reference_runs_or_is_refused_clearly(ltx_server):
    api = client(ltx_server.base_url)
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), "blue").save(picture, format="PNG")
    try:
        video = api.videos.create(
            prompt="x", input_reference=("ref.png", picture.getvalue(), "image/png"), **VIDEO
        )
    except openai.BadRequestError as exc:  # a family without image conditioning says so, naming the field
        assert exc.body["param"] == "input_reference", exc.body
        return
    assert wait_done(api, video.id)[-1].status == "completed"


def test_sixteen_concurrent_requests_complete(ltx_server, tmp_path):
    api = client(ltx_server.base_url)

    def one(index: int) -> tuple[str, str]:
        video = api.videos.create(prompt=f"clip {index}", **VIDEO)
        return video.id, wait_done(api, video.id)[-1].status

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert [status for _, status in results] == ["completed"] * 16
    assert len({video_id for video_id, _ in results}) == 16
    api.videos.download_content(results[-1][0]).write_to_file(tmp_path / "last.mp4")
    assert probe_mp4(tmp_path / "last.mp4").frame_count == 9


def test_video_bad_requests_keep_the_server_up(ltx_server):
    base = ltx_server.base_url
    api = client(base)
    with pytest.raises(openai.BadRequestError, match="num_frames=10"):
        api.videos.create(prompt="x", size="64x64", extra_body={"num_frames": 10})
    with pytest.raises(openai.BadRequestError, match="size"):
        api.videos.create(prompt="x", size="64 by 64")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="readable image"):
        api.videos.create(prompt="x", input_reference=("a.png", b"not a png", "image/png"), **VIDEO)
    with pytest.raises(openai.NotFoundError, match="model"):
        api.videos.create(prompt="x", model="sora-2")
    with pytest.raises(openai.NotFoundError):
        api.videos.retrieve("video_0000")
    with pytest.raises(openai.BadRequestError, match="makes videos"):
        api.images.generate(prompt="x")
    for body, status in ((b"{oops", 400), (b"[1]", 400), (b'{"prompt": 1}', 400), (b"x" * (5 << 20), 413)):
        response = httpx.post(f"{base}/v1/videos", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status and set(response.json()["error"]) >= {"message", "code"}
    assert httpx.get(f"{base}/health").json()["status"] == "ok"
    assert [m.id for m in api.models.list()] == ["tiny-ltx2"]


@needs_tiny("tiny-flux2-klein")
def test_images_generate_edit_and_concurrent(flux_server):
    api = client(flux_server.base_url)
    result = api.images.generate(
        model="tiny-flux2-klein", prompt="a cat", n=2, response_format="b64_json", **IMAGE
    )
    assert [png_size(item.b64_json) for item in result.data] == [(64, 64), (64, 64)]
    reference = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(reference, format="PNG")
    edited = api.images.edit(
        image=("ref.png", reference.getvalue(), "image/png"), prompt="make it red", **IMAGE
    )
    assert png_size(edited.data[0].b64_json) == (64, 64)
    with ThreadPoolExecutor(4) as pool:  # requests that each await their own queued job
        sizes = list(
            pool.map(
                lambda i: png_size(api.images.generate(prompt=f"cat {i}", **IMAGE).data[0].b64_json),
                range(4),
            )
        )
    assert sizes == [(64, 64)] * 4
    with pytest.raises(openai.BadRequestError, match="readable image"):
        api.images.edit(image=("x.png", b"\x89PNG broken", "image/png"), prompt="x")
    with pytest.raises(openai.BadRequestError, match="n=-1"):
        api.images.generate(prompt="x", n=-1)
    assert httpx.get(f"{flux_server.base_url}/health").json()["status"] == "ok"


def test_kill_9_reruns_the_running_job_and_sigterm_stops_cleanly(tmp_path):
    data = tmp_path / "data"
    first = ServeProcess("tiny-ltx2", data, "--max-queue", "1").wait()
    api = client(first.base_url)
    try:
        done = api.videos.create(prompt="finished before the crash", **VIDEO)
        assert wait_done(api, done.id)[-1].status == "completed"
        running = api.videos.create(
            prompt="running",
            size="64x64",
            extra_body={"num_frames": 17, "num_inference_steps": 60, "seed": 4},
        )
        wait_running(api, running.id, min_progress=6)  # a few denoising steps in
        waiting = api.videos.create(prompt="queued at the crash", **VIDEO)
        with pytest.raises(openai.RateLimitError) as full:  # --max-queue 1: one waiting job fills it
            api.videos.create(prompt="no room", **VIDEO)
        assert full.value.response.headers["retry-after"].isdigit()
        assert full.value.body["code"] == "queue_full"
    finally:
        first.kill()
    half_written = data / "outputs" / running.id / "video.mp4.part"  # as a kill during the write leaves it
    half_written.parent.mkdir(parents=True, exist_ok=True)
    half_written.write_bytes(b"half a video")

    second = ServeProcess("tiny-ltx2", data, "--shutdown-grace", "0").wait()
    api = client(second.base_url)
    try:
        assert not half_written.exists() and "video.mp4.part" in second.log_text()
        listed = {v.id: v for v in api.videos.list()}
        assert set(listed) == {done.id, running.id, waiting.id}
        assert listed[done.id].status == "completed"
        api.videos.download_content(done.id).write_to_file(tmp_path / "done.mp4")
        assert probe_mp4(tmp_path / "done.mp4").audio_codec == "aac"
        rerun = wait_done(api, running.id)[-1]  # re-queued, run again from the start, completed
        assert rerun.status == "completed" and rerun.seed == 4, rerun
        assert JobStore(data).get(running.id).attempts == 2
        api.videos.download_content(running.id).write_to_file(tmp_path / "rerun.mp4")
        assert probe_mp4(tmp_path / "rerun.mp4").frame_count == 17
        assert wait_done(api, waiting.id)[-1].status == "completed"
        assert not list((data / "outputs").rglob("*.part"))
        cut = api.videos.create(
            prompt="cut by SIGTERM", size="64x64", extra_body={"num_frames": 17, "num_inference_steps": 100}
        )
        wait_running(api, cut.id)
    finally:
        assert second.stop(timeout=60) in CLEAN_EXIT, second.log_text()[-3000:]
    job = JobStore(data).get(cut.id)  # recorded by the shutdown itself, not by a later recovery
    assert (
        job.status == "failed" and job.error["code"] == "interrupted" and "shut down" in job.error["message"]
    )


def run_cli(*args: str, timeout: float = 60) -> tuple[int, str, float]:
    """`ditto serve ...` expected to stop by itself: (exit code, stderr, seconds)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ditto.cli", "serve", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip
    return done.returncode, done.stderr, time.monotonic() - start


def folder_state(data: Path) -> dict:
    """Every job row and every file (with its size) of a data folder."""
    jobs = {job.id: (job.status, job.progress, job.outputs) for job in JobStore(data).list(None, limit=1000)}
    files = {
        str(p.relative_to(data)): p.stat().st_size
        for p in data.rglob("*")
        if p.is_file() and "sqlite" not in p.name
    }
    return {"jobs": jobs, "files": files}


def test_a_second_server_on_a_held_folder_or_a_taken_port_exits_at_once(ltx_server, tmp_path):
    api = client(ltx_server.base_url)
    video = api.videos.create(prompt="before the intruder", **VIDEO)
    assert wait_done(api, video.id)[-1].status == "completed"
    data = ltx_server.data_dir
    before = folder_state(data)
    code, err, seconds = run_cli("--model", "tiny-ltx2", "--data-dir", str(data), "--port", str(free_port()))
    assert code == 2 and seconds < 5 + STARTUP_S, (code, err, seconds)
    assert err.strip().splitlines() == [err.strip()] and "in use by another ditto serve" in err
    fresh = tmp_path / "fresh"
    code, err, seconds = run_cli(
        "--model", "tiny-ltx2", "--data-dir", str(fresh), "--port", str(ltx_server.port)
    )
    assert (
        code == 2
        and seconds < 5 + STARTUP_S
        and "cannot listen" in err
        and len(err.strip().splitlines()) == 1
    )
    assert not fresh.exists()
    assert folder_state(data) == before
    assert api.videos.retrieve(video.id).status == "completed"


def test_without_keys_only_loopback(tmp_path):
    code, err, _ = run_cli("--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()))
    assert code == 2 and "loopback only" in err and not (tmp_path / "d").exists()


def test_openai_default_sizes_are_snapped(ltx_server, tmp_path):
    api = client(ltx_server.base_url)
    video = api.videos.create(
        prompt="a wide clip", size="1280x720", extra_body={"num_frames": 9, "num_inference_steps": 1}
    )
    assert video.size == "1280x704" and video.model_extra["size_requested"] == "1280x720"
    assert wait_done(api, video.id)[-1].status == "completed"
    api.videos.download_content(video.id).write_to_file(tmp_path / "wide.mp4")
    info = probe_mp4(tmp_path / "wide.mp4")
    assert (info.width, info.height) == (1280, 704)
    assert JobStore(ltx_server.data_dir).get(video.id).meta["size_requested"] == "1280x720"
    log = ltx_server.log_text()
    assert f"job {video.id}: denoise" in log and "it/s]" not in log and "step/s]" not in log
