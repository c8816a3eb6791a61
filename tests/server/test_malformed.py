"""A corpus of malformed and abusive requests (issue 20): each gets a 4xx JSON error in OpenAI's shape that
names the field (or no field, for a body that is not a request at all), no traceback or server path, and
the server still serves a valid request afterwards.

The servers run a fake engine that calls itself FLUX.2 Klein and LTX-2, so the request models, limits and
field names are those families' own; the engine validates like a family (tests/server/fake_engine.py).
"""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib

import httpx
import pytest
from PIL import Image

from ditto.server import create_app
from ditto.server.limits import Limits

from .fake_engine import FakeEngine
from .helpers import thread_server

JSON = {"content-type": "application/json"}
IMAGES, EDITS, VIDEOS = "/v1/images/generations", "/v1/images/edits", "/v1/videos"
UPLOAD_LIMIT = 64 << 10


def limits(family: str) -> Limits:
    return Limits.for_family(
        family, max_steps=50, max_images=4, max_prompt_bytes=2000, max_upload_bytes=UPLOAD_LIMIT,
        max_upload_pixels=1024 * 1024, max_frames=121, max_seconds=10.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    image, video = FakeEngine("image"), FakeEngine("video")
    image.family, video.family = "flux2-klein", "ltx2"
    apps = [
        create_app(engine, tmp_path_factory.mktemp(engine.family), limits=limits(engine.family), body_timeout_s=1.0)
        for engine in (image, video)
    ]  # fmt: skip
    with thread_server(apps[0]) as image_url, thread_server(apps[1]) as video_url:
        yield {"image": image_url, "video": video_url}


def png(width: int = 32, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG header that declares a huge image (1.2 GB decoded) in a few bytes; the data is never read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def j(body: dict | list | str | int | None) -> dict:
    return {"json": body}


def raw(text: bytes, content_type: str | None = "application/json") -> dict:
    return {"content": text, "headers": {"content-type": content_type} if content_type else {}}


def form(data: dict, files: list | None = None) -> dict:
    return {"data": data, "files": files or [("unused", ("x.txt", b"", "text/plain"))]}


def case(server: str, path: str, kwargs: dict, status: int, param: str | None, method: str = "POST"):
    return pytest.param(server, method, path, kwargs, status, param, id=f"{server}-{method}-{path}-{param}")


P = {"prompt": "a cat"}
BAD_VALUES = [  # (field, value, expected param): wrong types, non-finite numbers, out-of-range values
    ("n", "two", "n"), ("n", 2.5, "n"), ("n", True, "n"), ("n", 0, "n"), ("n", -1, "n"), ("n", [1], "n"),
    ("seed", 2**70, "seed"), ("seed", -1, "seed"), ("seed", 1.5, "seed"), ("seed", "x", "seed"),
    ("seed", True, "seed"), ("seed", {"a": 1}, "seed"),
    ("guidance_scale", "NaN", "guidance_scale"), ("guidance_scale", [1], "guidance_scale"),
    ("guidance_scale", {"x": 1}, "guidance_scale"), ("guidance_scale", True, "guidance_scale"),
    ("num_inference_steps", "4", "num_inference_steps"), ("num_inference_steps", 4.5, "num_inference_steps"),
    ("num_inference_steps", 1_000_000, "num_inference_steps"), ("num_inference_steps", 0, "num_inference_steps"),
    ("num_inference_steps", -3, "num_inference_steps"), ("width", "64", "width"), ("height", [64], "height"),
    ("width", 200_000, "width"),  # with the family's default height: over max_pixels
    ("size", "big", "size"), ("size", "0x0", "size"), ("size", "-64x64", "size"), ("size", "64x", "size"),
    ("size", 64, "size"), ("size", ["64x64"], "size"), ("size", "65536x65536", "size"), ("size", "4096x4096", "size"),
    ("size", "9" * 40 + "x64", "size"),
    ("model", {"name": "x"}, "model"), ("model", ["a"], "model"), ("model", 3, "model"), ("model", "dall-e-3", "model"),
    ("prompt", 3, "prompt"), ("prompt", ["a", "b"], "prompt"), ("prompt", {"t": 1}, "prompt"), ("prompt", "", "prompt"),
    ("prompt", None, "prompt"), ("prompt", "x" * 3000, "prompt"), ("prompt", "   ", "prompt"),
    ("negative_prompt", 5, "negative_prompt"), ("negative_prompt", "y" * 3000, "negative_prompt"),
    ("response_format", "xml", "response_format"), ("stream", True, "stream"), ("output_format", "jpeg", "output_format"),
    ("bogus", 1, "bogus"), ("num_frames", 9, "num_frames"), ("fps", 24, "fps"), ("true_cfg_scale", 4.0, "true_cfg_scale"),
    ("max_sequence_length", 10, "max_sequence_length"), ("output_type", "latent", "output_type"),
    ("num_images_per_prompt", 2, "num_images_per_prompt"), ("image", "/etc/passwd", "image"),
    ("n", 5, "n"),  # over max_images=4
]  # fmt: skip
BAD_VIDEO_VALUES = [
    ("seconds", "NaN", "seconds"), ("seconds", "inf", "seconds"), ("seconds", "1e308", "seconds"),
    ("seconds", -4, "seconds"), ("seconds", 0, "seconds"), ("seconds", "abc", "seconds"), ("seconds", [], "seconds"),
    ("seconds", {"s": 4}, "seconds"), ("seconds", 1e6, "seconds"), ("seconds", 11, "seconds"),
    ("fps", "NaN", "fps"), ("frame_rate", "fast", "frame_rate"), ("num_frames", 100_000_001, "num_frames"),
    ("num_frames", 10, "num_frames"), ("num_frames", 129, "num_frames"), ("num_frames", "9", "num_frames"),
    ("stg_scale", [1.0], "stg_scale"), ("sampler", "ddim", "sampler"), ("pipeline", "three-stage", "pipeline"),
    ("seed", 2**64, "seed"), ("input_reference", {"url": "http://x"}, "input_reference"),
    ("n", 2, "n"), ("true_cfg_scale", 1.0, "true_cfg_scale"), ("size", "1280x72000", "size"),
    ("image_conditioning", "other", "image_conditioning"),
]  # fmt: skip

CASES = [
    *(case("image", IMAGES, j({**P, field: value}), 404 if value == "dall-e-3" else 400, param)
      for field, value, param in BAD_VALUES),
    *(case("video", VIDEOS, j({**P, field: value}), 400, param) for field, value, param in BAD_VIDEO_VALUES),
    # bodies that are not a request
    case("image", IMAGES, raw(b"{not json"), 400, None),
    case("image", IMAGES, raw(b""), 400, None),
    case("image", IMAGES, raw(b"null"), 400, None),
    case("image", IMAGES, raw(b'"a cat"'), 400, None),
    case("image", IMAGES, raw(b"[1, 2]"), 400, None),
    case("image", IMAGES, raw(b"[" * 100_000 + b"]" * 100_000), 400, None),
    case("image", IMAGES, raw(b'{"prompt": "\\ud800"}'), 400, None),
    case("image", IMAGES, raw(b'{"prompt": "a", "guidance_scale": NaN}'), 400, "guidance_scale"),
    case("image", IMAGES, raw(b'{"prompt": "a", "guidance_scale": Infinity}'), 400, "guidance_scale"),
    case("image", IMAGES, raw(b'{"prompt": "a", "guidance_scale": 1e400}'), 400, "guidance_scale"),
    case("video", VIDEOS, raw(b'{"prompt": "a", "fps": NaN}'), 400, "fps"),
    case("image", IMAGES, raw(b"\xff\xfe{}"), 400, None),
    case("image", IMAGES, raw(b'{"prompt": "caf\xe9"}', "application/json; charset=latin-1"), 400, None),
    case("video", VIDEOS, raw(b"garbage", "multipart/form-data"), 400, None),
    case("video", VIDEOS, raw(b"--x\r\nbroken", "multipart/form-data; boundary=x"), 400, "prompt"),
    case("image", IMAGES, raw(b"{" + b" " * (2 << 20) + b"}"), 413, None),
    # media types: JSON routes take JSON only (a cross-site text/plain or form POST is refused)
    case("image", IMAGES, raw(b'{"prompt": "a"}', "text/plain"), 415, None),
    case("image", IMAGES, raw(b'{"prompt": "a"}', None), 415, None),
    case("image", IMAGES, raw(b"prompt=a", "application/x-www-form-urlencoded"), 415, None),
    case("image", IMAGES, form({"prompt": "a"}), 415, None),
    case("video", VIDEOS, raw(b'{"prompt": "a"}', "text/plain"), 415, None),
    case("image", EDITS, raw(b'{"prompt": "a"}'), 415, None),
    # uploads
    case("image", EDITS, form({"prompt": "a"}), 400, "image"),
    case("image", EDITS, form({"prompt": "a"}, [("image", ("a.png", b"not an image", "image/png"))]), 400, "image"),
    case("image", EDITS, form({"prompt": "a"}, [("image", ("b.png", png_bomb(), "image/png"))]), 400, "image"),
    case("image", EDITS, form({"prompt": "a"}, [("image", ("c.png", b"\x89PNG" + b"\0" * (UPLOAD_LIMIT + 10), "image/png"))]), 400, "image"),
    case("image", EDITS, form({"prompt": "a"}, [("image", (f"{i}.png", png(), "image/png")) for i in range(5)]), 400, "image"),
    case("image", EDITS, form({"prompt": "a"}, [("mask", ("m.png", png(), "image/png"))]), 400, "image"),
    case("image", EDITS, form({"prompt": "a"}, [("image", ("a.png", png(), "image/png")), ("mask", ("m.png", png(), "image/png"))]), 400, "mask"),
    case("image", EDITS, form({"prompt": "a", "n": "lots"}, [("image", ("a.png", png(), "image/png"))]), 400, "n"),
    case("image", EDITS, form({"prompt": "a", "seed": "-5"}, [("image", ("a.png", png(), "image/png"))]), 400, "seed"),
    case("image", EDITS, form({"prompt": "a", "guidance_scale": "nan"}, [("image", ("a.png", png(), "image/png"))]), 400, "guidance_scale"),
    case("image", EDITS, form({"prompt": "a", "size": "9x9x9"}, [("image", ("a.png", png(), "image/png"))]), 400, "size"),
    case("video", VIDEOS, form({"prompt": "a"}, [("input_reference", ("r.png", b"GIF89a junk", "image/png"))]), 400, "input_reference"),
    case("video", VIDEOS, form({"prompt": "a"}, [("input_reference", ("r.png", png_bomb(30000, 30000), "image/png"))]), 400, "input_reference"),
    case("video", VIDEOS, form({"prompt": "a", "seconds": "forever"}), 400, "seconds"),
    case("video", VIDEOS, form({"prompt": "a", "num_frames": "1e9"}), 400, "num_frames"),
    case("video", VIDEOS, form({"prompt": "a"}, [("thumbnail", ("t.png", png(), "image/png"))]), 400, "thumbnail"),
    # kinds and routes
    case("video", IMAGES, j(P), 400, "model"),
    case("image", VIDEOS, j(P), 400, "model"),
    case("video", "/v1/videos/video_nope", {}, 404, "video_id", "GET"),
    case("video", "/v1/videos/video_nope", {}, 404, "video_id", "DELETE"),
    case("video", "/v1/videos/video_nope/cancel", {}, 404, "video_id"),
    case("video", "/v1/videos/video_nope/content", {}, 404, "video_id", "GET"),
    case("video", "/v1/videos?limit=0", {}, 400, "limit", "GET"),
    case("video", "/v1/videos?limit=abc", {}, 400, "limit", "GET"),
    case("video", "/v1/videos?order=sideways", {}, 400, "order", "GET"),
    case("video", "/v1/jobs/img_nope", {}, 404, "job_id", "GET"),
    case("video", "/v1/jobs/img_nope/cancel", {}, 404, "job_id"),
    case("video", "/v1/jobs?limit=1000", {}, 400, "limit", "GET"),
    case("image", "/v1/images/img_nope/0", {}, 404, "job_id", "GET"),
    case("image", "/v1/images/img_nope/x", {}, 400, "index", "GET"),
    case("image", "/v1/models/sora-2", {}, 404, "model", "GET"),
    case("image", "/v1/nothing-here", {}, 404, None, "GET"),
    case("image", VIDEOS, {}, 405, None, "PUT"),
    # browser-facing: a foreign Host (DNS rebinding) and a cross-site Origin
    case("image", IMAGES, {"json": P, "headers": {"host": "evil.example"}}, 400, None),
    case("image", IMAGES, {"json": P, "headers": {"origin": "http://evil.example"}}, 403, None),
    case("image", "/v1/models", {"headers": {"host": "attacker.test:30010"}}, 400, None, "GET"),
]  # fmt: skip


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 100


@pytest.mark.parametrize("server, method, path, kwargs, status, param", CASES)
def test_malformed_request(servers, tmp_path_factory, server, method, path, kwargs, status, param):
    base_url = servers[server]
    response = httpx.request(method, f"{base_url}{path}", timeout=20, **kwargs)
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    assert error["param"] == param, error
    assert "Traceback" not in response.text and "/tmp" not in response.text and ".py" not in response.text
    assert_still_serving(base_url, server)


def assert_still_serving(base_url: str, server: str) -> None:
    if server == "image":
        ok = httpx.post(
            f"{base_url}{IMAGES}", json={**P, "size": "64x32", "num_inference_steps": 1}, timeout=20
        )
        assert ok.status_code == 200 and ok.json()["data"][0]["b64_json"], ok.text[:300]
    else:
        ok = httpx.post(
            f"{base_url}{VIDEOS}", json={**P, "size": "64x32", "num_inference_steps": 1}, timeout=20
        )
        assert ok.status_code == 200 and ok.json()["status"] == "queued", ok.text[:300]


def test_a_body_shorter_than_its_length_is_cut_off(servers):
    """Content-Length says 10 GiB (over the limit: 413 without waiting) or 100 bytes with 10 sent (408 after
    the body timeout): neither holds the connection."""
    base_url = servers["image"]
    host, port = base_url.removeprefix("http://").split(":")
    for declared, sent, status in ((10 << 30, b"{}", b"413"), (100, b'{"prompt"', b"408")):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = f"POST {IMAGES} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            sock.sendall(f"{head}Content-Length: {declared}\r\n\r\n".encode() + sent)
            start = time.monotonic()
            answer = sock.recv(4096)
            assert answer.split(b" ")[1] == status, answer[:200]
            assert time.monotonic() - start < 5
    assert_still_serving(base_url, "image")


def test_slow_headers_are_cut_off(tmp_path):
    app = create_app(FakeEngine("image"), tmp_path / "data")
    from ditto.server.protocol import with_header_timeout

    with thread_server(app, http=with_header_timeout(0.5)) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            start = time.monotonic()
            assert sock.recv(4096) == b""  # closed by the server
            assert time.monotonic() - start < 5
        assert httpx.get(f"{base_url}/health").status_code == 200


def test_messages_name_no_server_path(tmp_path):
    from ditto.server.errors import without_paths

    data = tmp_path / "data"
    message = f"image=['{data}/uploads/video_1/input_reference-0.png'] is not usable; data in {data}"
    assert (
        without_paths(message, data)
        == "image=['uploads/video_1/input_reference-0.png'] is not usable; data in <data>"
    )
