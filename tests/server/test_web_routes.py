"""What the web page stands on, without a browser: the page's files (served without a key, with a strict
content policy; off with --no-ui), /v1/fields' defaults and size presets (per LTX-2 pipeline too, on the
tiny LTX-2), the latent previews of a running job (GET /v1/jobs/{id}/preview, `live.preview`, the
`preview_every` field and --preview-every), and the content paths of a finished job. Against the fake
engine, whose steps the test holds."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from ditto.engine import Engine
from ditto.errors import DittoError
from ditto.fields import FIELDS
from ditto.server import create_app
from ditto.server.cli import build_settings
from ditto.server.guard import Access
from ditto.server.limits import Limits

from .fake_engine import CELL, FakeEngine
from .helpers import thread_server
from .test_jobs import job, wait_for
from .test_serve_cli import parse

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
KEY = "route-key"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    engine = FakeEngine("video", step_seconds=0.01)
    app = create_app(engine, tmp_path_factory.mktemp("video"), limits=Limits(max_steps=1000))
    with thread_server(app) as base_url:
        yield base_url, engine


def test_the_page_and_its_files_are_served_with_a_content_policy(video):
    base_url, _ = video
    page = httpx.get(f"{base_url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script" in page.text and "http" not in page.text.split("<body>")[0]  # nothing from elsewhere
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        response = httpx.get(f"{base_url}/ui/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    for name in ("../app.py", "%2e%2e%2fapp.py", "missing.js", "index"):
        assert httpx.get(f"{base_url}/ui/{name}").status_code == 404, name


def test_with_keys_the_page_is_open_and_the_api_is_not(tmp_path):
    app = create_app(FakeEngine("image"), tmp_path, access=Access.build([KEY]))
    with thread_server(app) as base_url:
        assert httpx.get(f"{base_url}/").status_code == 200
        assert httpx.get(f"{base_url}/ui/api.js").status_code == 200
        assert httpx.get(f"{base_url}/v1/fields").status_code == 401
        authorized = httpx.get(f"{base_url}/v1/fields", headers={"Authorization": f"Bearer {KEY}"})
        assert authorized.status_code == 200


def test_no_ui_serves_no_page(tmp_path):
    assert build_settings(parse("--no-ui")).ui is False
    assert build_settings(parse()).ui is True
    app = create_app(FakeEngine("image"), tmp_path, ui=False)
    with thread_server(app) as base_url:
        assert httpx.get(f"{base_url}/").status_code == 404
        assert httpx.get(f"{base_url}/ui/app.js").status_code == 404
        assert httpx.get(f"{base_url}/v1/fields").status_code == 200


def test_fields_give_defaults_and_sizes_the_model_makes(video):
    base_url, _ = video
    fields = httpx.get(f"{base_url}/v1/fields").json()
    assert fields["defaults"]["width"] == 64 and fields["defaults"]["num_frames"] == 9  # FakeEngine's
    assert fields["size_presets"][0] == "64x32"  # the default size first
    for size in fields["size_presets"]:
        width, height = map(int, size.split("x"))
        assert width % 32 == 0 and height % 32 == 0, size  # what FakeEngine.validate accepts
    assert len(fields["size_presets"]) == len(set(fields["size_presets"])) >= 3
    assert fields["loras"] == [] and fields["preview_every"] == 0
    assert fields["pipelines"] == {}  # a family without pipelines: one set of defaults
    assert fields["unavailable_pipelines"] == {}


def test_fields_give_each_ltx2_pipeline_its_own_defaults_and_sizes(tmp_path):
    """Per pipeline, the family's own defaults (HQ: its steps and size) and sizes at its default area, or
    none where the pipeline takes no size (a retake's is its source video's); each field says which
    pipelines take it, from the field table."""
    engine = Engine.from_pretrained("tiny-ltx2", device="cpu", dtype="float32")
    with thread_server(create_app(engine, tmp_path)) as base_url:
        fields = httpx.get(f"{base_url}/v1/fields").json()
    forms = fields["pipelines"]
    assert set(forms) == set(FIELDS["pipeline"].choices)
    for name, form in forms.items():
        own = engine.defaults(prompt="x", pipeline=name)
        # each pipeline sends what differs from the checkpoint's defaults; the page lays it over them
        merged = {**fields["defaults"], **form["defaults"]}
        assert merged == {key: getattr(own, key) for key in merged}, name
        assert merged["num_inference_steps"] == own.num_inference_steps, name
        assert all(fields["defaults"].get(key) != value for key, value in form["defaults"].items()), name
        sized = FIELDS["width"].takes(name)
        assert form["size_presets"][:1] == ([f"{own.width}x{own.height}"] if sized else []), name
    hq, default = forms["hq"]["defaults"], fields["defaults"]
    assert (hq["num_inference_steps"], hq["width"]) != (default["num_inference_steps"], default["width"])
    assert "negative_prompt" not in forms["one-stage"]["defaults"]  # the base's 1 KB prompt, sent once
    table = {item["name"]: item for item in fields["fields"]}
    assert (
        table["video"]["pipelines"] == ["retake"] and "distilled" not in table["guidance_scale"]["pipelines"]
    )
    assert table["image_frames"]["api_names"] == ["input_reference_frames"]
    # tiny-ltx2 has no latent upsampler: every half-size recipe is listed with the family's reason; the
    # one-stage runs, and a retake only waits for its video (its error names `video`, not `pipeline`)
    unavailable = fields["unavailable_pipelines"]
    upsampled = {"two-stage", "distilled", "hq", "ic-lora", "keyframe-interpolation", "audio-to-video"}
    assert set(unavailable) == upsampled
    assert all("latent upsampler" in why and "/work" not in why for why in unavailable.values())


def test_a_checkpoint_with_an_upsampler_runs_every_pipeline_but_the_ic_lora_one(tmp_path):
    """The IC-LoRA recipe needs an IC-LoRA loaded with the engine (a load option, not a request field)."""
    from helpers.ltx2 import stages_folder

    engine = Engine.from_pretrained(stages_folder("2.0"), device="cpu", dtype="float32")
    with thread_server(create_app(engine, tmp_path)) as base_url:
        fields = httpx.get(f"{base_url}/v1/fields").json()
    assert fields["unavailable_pipelines"] == {"ic-lora": "needs an IC-LoRA"}


def test_a_running_job_shows_its_latest_preview(video):
    base_url, engine = video
    engine.gate.clear()
    engine.hold_after_step = 4  # the job stays running after its second preview, so the route has one
    try:
        body = {"prompt": "x", "size": "128x64", "num_inference_steps": 6, "preview_every": 2}
        created = httpx.post(f"{base_url}/v1/videos", json=body).json()
        assert (
            httpx.get(f"{base_url}/v1/jobs/{created['id']}/preview").json()["error"]["code"] == "no_preview"
        )
        engine.gate.set()
        running = wait_for(
            lambda: (j := job(base_url, created["id"]))["live"] and j["live"]["preview"]["step"] and j
        )
        preview = running["live"]["preview"]
        assert preview["every"] == 2 and preview["step"] % 2 == 0 and preview["mean_ms"] > 0
        response = httpx.get(f"{base_url}/v1/jobs/{created['id']}/preview")
        assert (
            response.headers["content-type"] == "image/png"
            and int(response.headers["x-preview-step"]) % 2 == 0
        )
        assert Image.open(io.BytesIO(response.content)).size == (128 // CELL, 64 // CELL)  # a pixel per cell
    finally:
        engine.hold_after_step = None
        engine.gate.set()
    finished = wait_for(lambda: (j := job(base_url, created["id"]))["status"] == "completed" and j)
    assert finished["meta"]["preview_every"] == 2 and finished["timings"]["preview"] > 0
    assert finished["content"] == [f"/v1/videos/{created['id']}/content"]
    gone = httpx.get(f"{base_url}/v1/jobs/{created['id']}/preview").json()["error"]
    assert gone["code"] == "no_preview" and "completed" in gone["message"]


def test_no_previews_unless_asked(video):
    base_url, _ = video
    created = httpx.post(f"{base_url}/v1/videos", json={"prompt": "x", "num_inference_steps": 2}).json()
    finished = wait_for(lambda: (j := job(base_url, created["id"]))["status"] == "completed" and j)
    assert "preview_every" not in finished["meta"] and "preview" not in finished["timings"]
    error = httpx.get(f"{base_url}/v1/jobs/{created['id']}/preview").json()["error"]
    assert "preview_every=0" in error["message"]


def test_preview_every_is_checked(video):
    base_url, _ = video
    for value in (-1, "2", 1.5):
        error = httpx.post(f"{base_url}/v1/videos", json={"prompt": "x", "preview_every": value}).json()[
            "error"
        ]
        assert error["param"] == "preview_every", error
    with pytest.raises(DittoError, match="must be 0"):
        build_settings(parse("--preview-every", "-1"))


def test_the_server_default_applies_to_requests_that_do_not_say(tmp_path):
    assert build_settings(parse("--preview-every", "3")).preview_every == 3
    app = create_app(FakeEngine("video"), tmp_path, preview_every=3)
    with thread_server(app) as base_url:
        assert httpx.get(f"{base_url}/v1/fields").json()["preview_every"] == 3
        created = httpx.post(f"{base_url}/v1/videos", json={"prompt": "x", "num_inference_steps": 3}).json()
        finished = wait_for(lambda: (j := job(base_url, created["id"]))["status"] == "completed" and j)
        assert finished["meta"]["preview_every"] == 3 and finished["timings"]["preview"] > 0
        off = httpx.post(f"{base_url}/v1/videos", json={"prompt": "x", "preview_every": 0}).json()
        finished = wait_for(lambda: (j := job(base_url, off["id"]))["status"] == "completed" and j)
        assert "preview_every" not in finished["meta"]
