"""API keys and tenancy: with keys on, every route but /health needs one, and each key sees only its own
jobs (listing, fetching, downloading, cancelling, deleting). CORS stays off unless configured."""

from __future__ import annotations

import httpx
import openai
import pytest

from ditto.server import create_app
from ditto.server.guard import Access, host_name, read_keys

from .fake_engine import FakeEngine
from .helpers import thread_server
from .test_api_fake_engine import wait_status

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
KEY_A, KEY_B = "sk-alice-0123456789", "sk-bob-9876543210"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    keys_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys_file.write_text(f"# two tenants\n{KEY_A}\n\n{KEY_B}\n")
    access = Access.build(read_keys([], keys_file), cors_origins=["http://app.example"])
    engine = FakeEngine("video")
    with thread_server(create_app(engine, tmp_path_factory.mktemp("data"), access=access)) as base_url:
        yield base_url


def api(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=30)


def test_every_route_but_health_needs_a_key(keyed_server):
    assert httpx.get(f"{keyed_server}/health").status_code == 200
    for path in ("/v1/models", "/v1/videos", "/metrics", "/openapi.json", "/docs", "/v1/jobs", "/v1/fields"):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY_A}):
            response = httpx.get(f"{keyed_server}{path}", headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            assert response.json()["error"]["code"] == "invalid_api_key"
        assert (
            httpx.get(f"{keyed_server}{path}", headers={"authorization": f"Bearer {KEY_A}"}).status_code
            == 200
        )
    with pytest.raises(openai.AuthenticationError):
        api(keyed_server, "sk-nobody").videos.create(prompt="x")


def test_key_b_cannot_see_or_touch_key_a_jobs(keyed_server, tmp_path):
    alice, bob = api(keyed_server, KEY_A), api(keyed_server, KEY_B)
    mine = alice.videos.create(prompt="alice's secret prompt", size="64x32")
    assert wait_status(alice, mine.id)[-1].status == "completed"
    theirs = bob.videos.create(prompt="bob's", size="64x32")
    assert [v.id for v in alice.videos.list()] == [mine.id]
    assert [v.id for v in bob.videos.list()] == [theirs.id]
    for attempt in (
        lambda: bob.videos.retrieve(mine.id),
        lambda: bob.videos.download_content(mine.id),
        lambda: bob.videos.delete(mine.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    bearer_b = {"authorization": f"Bearer {KEY_B}"}
    for method, path in (("GET", f"/v1/jobs/{mine.id}"), ("POST", f"/v1/jobs/{mine.id}/cancel"),
                         ("POST", f"/v1/videos/{mine.id}/cancel"), ("DELETE", f"/v1/jobs/{mine.id}"),
                         ("GET", f"/v1/jobs/{mine.id}/events")):  # fmt: skip
        response = httpx.request(method, f"{keyed_server}{path}", headers=bearer_b)
        assert response.status_code == 404 and "alice" not in response.text, (path, response.text)
    listed = httpx.get(f"{keyed_server}/v1/jobs", headers=bearer_b).json()["data"]
    assert [job["id"] for job in listed] == [theirs.id]
    alice.videos.download_content(mine.id).write_to_file(tmp_path / "mine.mp4")  # still there for alice
    assert alice.videos.retrieve(mine.id).status == "completed"


def test_cors_only_for_configured_origins(keyed_server):
    preflight = {"origin": "http://app.example", "access-control-request-method": "POST"}
    response = httpx.options(f"{keyed_server}/v1/videos", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "http://app.example"
    headers = {"origin": "http://evil.example", "authorization": f"Bearer {KEY_A}"}
    refused = httpx.get(f"{keyed_server}/v1/models", headers=headers)
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_no_cors_by_default(tmp_path):
    with thread_server(create_app(FakeEngine("video"), tmp_path / "d")) as base_url:
        preflight = {"origin": "http://app.example", "access-control-request-method": "POST"}
        response = httpx.options(f"{base_url}/v1/videos", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        same_origin = httpx.get(f"{base_url}/v1/models", headers={"origin": base_url})
        assert same_origin.status_code == 200


def test_keys_from_the_environment_and_host_names(monkeypatch, tmp_path):
    monkeypatch.setenv("DITTO_API_KEY", "sk-env")
    assert read_keys(["sk-flag"]) == ["sk-flag", "sk-env"]
    assert [host_name(h) for h in ("a.b:80", "[::1]:8000", "LOCALHOST", "::1")] == [
        "a.b",
        "::1",
        "localhost",
        "::1",
    ]
    access = Access.build(bind_host="0.0.0.0", extra_hosts=["gpu.lan"])
    assert access.host_allowed("gpu.lan:30010") and access.host_allowed("127.0.0.1:1")
    assert not access.host_allowed("0.0.0.0") and not access.host_allowed("evil.test")
    assert Access.build(extra_hosts=["*"]).host_allowed("anything")
