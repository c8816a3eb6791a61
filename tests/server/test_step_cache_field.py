"""The server's `cache` request field and its per-server default (`ditto serve --cache`), on a real tiny
Qwen-Image engine: the job record and the response carry the step cache's stats; a bad spec is a 400 naming
the field."""

from __future__ import annotations

import httpx
import pytest

from ditto.cli import build_parser
from ditto.engine import Engine
from ditto.server import create_app
from ditto.server.routes_videos import video_object
from ditto.server.store import Job

from .helpers import thread_server

BODY = {"prompt": "a fox", "size": "32x32", "num_inference_steps": 4, "seed": 1}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    engine = Engine.from_pretrained("tiny-qwen-image", cache="mask:compute=0+3")  # the server's default
    with thread_server(create_app(engine, tmp_path_factory.mktemp("data"))) as url:
        yield url


def generate(base_url: str, **fields) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/images/generations", json={**BODY, **fields}, timeout=120)


def test_the_default_applies_and_a_request_may_name_its_own(base_url: str) -> None:
    by_default = generate(base_url).json()["cache_stats"]
    assert by_default == {
        "spec": "mask:compute=0+3",
        "denoise": {"cond": {"computed": 2, "cached": 2, "cached_steps": [1, 2]}},
    }
    own = generate(base_url, cache="mask:compute=0-2").json()["cache_stats"]
    assert own["denoise"]["cond"]["cached_steps"] == [3]
    assert "cache_stats" not in generate(base_url, cache="none").json()


def test_a_bad_spec_is_a_400_naming_the_field(base_url: str) -> None:
    response = generate(base_url, cache="dbcache:Fx=1")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (
        error["param"] == "cache"
        and "unknown key 'Fx'" in error["message"]
        and "Fn (int >= 1)" in error["message"]
    )


def test_a_video_job_record_shows_the_cache_stats() -> None:
    stats = {"spec": "fast", "denoise": {"cond": {"computed": 2, "cached": 1, "cached_steps": [1]}}}
    job = Job(
        id="video_1", kind="video", model="m", prompt="p", params={}, meta={"size": "64x64", "cache": stats}
    )
    assert video_object(job)["cache_stats"] == stats
    assert "cache_stats" not in video_object(
        Job(id="video_2", kind="video", model="m", prompt="p", params={})
    )


def test_serve_takes_a_default_cache_spec() -> None:
    args = build_parser().parse_args(["serve", "--model", "tiny-qwen-image", "--cache", "fast"])
    assert args.cache == "fast"
