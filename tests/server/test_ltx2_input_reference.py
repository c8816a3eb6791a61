"""OpenAI's videos API `input_reference` on a real tiny LTX-2 engine: the image conditions frame 0."""

from __future__ import annotations

import io
import time

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
