"""The web playground in a real browser: Debian's chromium (`make install` puts it there), driven by Playwright
through pytest-playwright, against `ditto serve --model tiny-ltx2` (with an API key) and `--model
tiny-flux2-klein` on loopback. Each test fills the form and submits it from the keyboard, watches the
progress advance and a latent preview appear, sees the result load (the video's duration read from the
element, its audio decoded by the browser and present in the file), submits an invalid value and reads the
server's own message, cancels a running job, and checks the page at a phone width. On LTX-2, choosing a
pipeline shows its own defaults (read from the engine) and fields, keeping what the user typed (on a tiny
checkpoint with the latent upsampler), a pipeline the checkpoint cannot run is greyed out with why, and
keyframes (several images with their frames) reach the job. Screenshots of each state go to the test's
temporary folder. A last test draws a file field of the table (api "upload") on the fake engine, in process.

Jobs are sized so they run a few seconds on 2 cores (a tiny step takes 10-20 ms): long enough for the page
to see several progress events (the event stream sends a change at most every 0.5 s).
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ditto.engine import Engine
from ditto.fields import FIELDS, RequestField
from ditto.media.video import probe_mp4
from ditto.server import create_app, routes_jobs, uploads

from . import fake_engine
from .helpers import ServeProcess, thread_server

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (make install does: apt-get install chromium)",
    ),
    # pytest-playwright 0.10's own session fixtures (base_url) are instance methods, which pytest 9 flags.
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]
KEY = "page-test-key"
WAIT_MS = 60_000
LONG_STEPS = {"tiny-ltx2": 250, "tiny-flux2-klein": 400}  # a few seconds each on 2 cores
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """The system's chromium, never a downloaded browser; media may play without a click (the audio test)."""
    args = ["--autoplay-policy=no-user-gesture-required"]
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": args}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture(scope="module")
def ltx_server(tmp_path_factory):
    server = ServeProcess(
        "tiny-ltx2", tmp_path_factory.mktemp("web-ltx") / "data", "--api-key", KEY, "--max-steps", "2000"
    ).wait()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ltx_stages_server(tmp_path_factory):
    """tiny LTX-2 with its latent upsampler and distilled LoRA: every pipeline but the IC-LoRA one runs."""
    from helpers.ltx2 import stages_folder

    folder = str(stages_folder("2.0"))
    server = ServeProcess(folder, tmp_path_factory.mktemp("web-ltx-stages") / "data", "--api-key", KEY)
    yield server.wait()
    server.stop()


@pytest.fixture(scope="module")
def klein_server(tmp_path_factory):
    server = ServeProcess(
        "tiny-flux2-klein", tmp_path_factory.mktemp("web-klein") / "data", "--max-steps", "2000"
    )
    yield server.wait()
    server.stop()


class Shots:
    """Numbered screenshots of each state, in the test's temporary folder."""

    def __init__(self, page, folder: Path) -> None:
        self.page, self.folder, self.count = page, folder, 0

    def __call__(self, name: str, full_page: bool = True) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def fill(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#f-{name}", value)


def unlabelled_inputs(page) -> list[str]:
    return page.eval_on_selector_all(
        "#job-form input, #job-form select, #job-form textarea",
        "nodes => nodes.filter(n => !n.labels || n.labels.length === 0).map(n => n.id || n.name)",
    )


def newest_card(page):
    return page.locator(".card").first


def watch_running_job(page, shots: Shots) -> None:
    """The newest card shows step k of n advancing, then a preview image of the latents."""
    card = newest_card(page)
    card.locator("progress[value]").wait_for(timeout=WAIT_MS)
    seen: list[float] = []
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(set(seen)) < 2:
        assert time.monotonic() < deadline, f"the progress did not advance: {seen}"
        value = card.locator("progress").evaluate("p => p.hasAttribute('value') ? p.value : 0")
        if value > 0:
            seen.append(value)
        page.wait_for_timeout(100)
    assert seen == sorted(seen), f"the progress went back: {seen}"
    assert (
        "step" in card.locator(".progress-text").inner_text()
        and "ETA" in card.locator(".progress-text").inner_text()
    )
    preview = card.locator("img.preview")
    preview.wait_for(timeout=WAIT_MS)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=preview.element_handle(), timeout=WAIT_MS
    )
    assert "Preview at step" in card.locator(".caption").inner_text()
    shots("running-with-preview")


def run_to_the_end(page, shots: Shots, values: dict[str, str]):
    """Submit from the keyboard with a preview every step, watch it run; the completed card."""
    fill(page, {**values, "preview_every": "1"})
    page.press("#f-prompt", "Control+Enter")
    watch_running_job(page, shots)
    done = page.locator(".card[data-status=completed]").first
    done.wait_for(timeout=WAIT_MS)
    return done


def check_invalid_value(
    page, base_url: str, headers: dict, route: str, field: str, value: str, body: dict
) -> str:
    """An invalid value submitted from the page shows the server's own message beside the field."""
    page.fill(f"#f-{field}", value)
    page.press(f"#f-{field}", "Enter")  # keyboard submit
    error = page.locator(f"#f-{field}-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    server = httpx.post(f"{base_url}{route}", json=body, headers=headers, timeout=30).json()["error"][
        "message"
    ]
    assert error.inner_text() == server, (error.inner_text(), server)
    assert page.locator("#form-error").inner_text() == server
    assert page.get_attribute(f"#f-{field}", "aria-invalid") == "true"
    return server


def cancel_then_final_state(page, shots: Shots) -> None:
    """A long job cancelled while it runs; the final state at the desktop width (docs/ui-*.png come from
    these), then the page at a phone's width."""
    fill(page, {"num_inference_steps": "2000", "preview_every": "0"})
    page.press("#f-prompt", "Control+Enter")
    cancel_running_job(page, shots)
    page.evaluate("() => { document.getElementById('compose').scrollTop = 0; window.scrollTo(0, 0) }")
    shots("final", full_page=False)
    check_phone_width(page, shots)


def cancel_running_job(page, shots: Shots) -> None:
    card = newest_card(page)
    card.locator("progress[value]").wait_for(timeout=WAIT_MS)
    card.get_by_role("button", name="Cancel").click()
    page.wait_for_selector(".card[data-status=cancelled]", timeout=WAIT_MS)
    assert "cancelled" in newest_card(page).locator(".card-error").inner_text()
    shots("cancelled")


def check_phone_width(page, shots: Shots) -> None:
    page.set_viewport_size(PHONE)
    page.locator("#f-prompt").scroll_into_view_if_needed()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    box = page.locator("#f-prompt").bounding_box()
    assert box["width"] >= 250, box  # the form takes the phone's width, not a squeezed column
    shots("phone")


def test_ltx2_page_with_an_api_key(page, ltx_server, tmp_path):
    shots = Shots(page, tmp_path)
    base_url, headers = ltx_server.base_url, {"Authorization": f"Bearer {KEY}"}
    page.goto(base_url)
    page.locator("#api-key").wait_for(state="visible")  # the page asks for the key once
    page.fill("#api-key", "wrong")
    page.press("#api-key", "Enter")
    page.get_by_text("The server refused this key").wait_for()
    shots("key-refused")
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    page.locator("#f-prompt").wait_for()
    assert unlabelled_inputs(page) == []
    for name in (
        "negative_prompt",
        "num_frames",
        "frame_rate",
        "guidance_scale",
        "stg_scale",
        "seed",
        "pipeline",
        "image",
        "cache",
        "preview_every",
    ):
        assert page.locator(f"#f-{name}").count() == 1, name
    assert page.input_value("#f-guidance_scale") == "3" and page.input_value("#f-stg_scale") == "1"
    assert "none" in page.locator("#lora-note").inner_text()
    shots("form")

    fill(page, {"prompt": "a red fox in the snow", "width": "128", "height": "128"})
    invalid = {"prompt": "a red fox in the snow", "size": "128x128", "num_frames": 10}
    message = check_invalid_value(page, base_url, headers, "/v1/videos", "num_frames", "10", invalid)
    assert "num_frames=10" in message
    shots("invalid-value")

    done = run_to_the_end(
        page, shots, {"num_frames": "9", "num_inference_steps": str(LONG_STEPS["tiny-ltx2"])}
    )
    video = done.locator("video")
    video.wait_for()
    duration = video.evaluate(
        "v => new Promise(ok => v.readyState >= 1 ? ok(v.duration) : v.addEventListener('loadedmetadata', () => ok(v.duration)))"
    )
    assert duration == pytest.approx(9 / 24, abs=0.05)  # 9 frames at 24 fps (audio may run a frame longer)
    decoded = video.evaluate(
        "v => { v.muted = false; return v.play().then(() => new Promise(ok => setTimeout(() => ok(v.webkitAudioDecodedByteCount), 300))) }"
    )
    assert decoded > 0, "the browser decoded no audio"
    job_id = done.get_attribute("data-job")
    content = httpx.get(f"{base_url}/v1/videos/{job_id}/content", headers=headers).content
    (tmp_path / "video.mp4").write_bytes(content)
    media = probe_mp4(tmp_path / "video.mp4")
    assert media.audio_codec == "aac" and media.audio_duration > 0
    assert (
        "denoise" in done.locator(".stages").inner_text()
        and "preview" in done.locator(".stages").inner_text()
    )
    assert done.locator("a.download").get_attribute("download") == f"{job_id}.mp4"
    shots("completed")

    done.get_by_role("button", name="Use these settings again").click()
    job = httpx.get(f"{base_url}/v1/jobs/{job_id}", headers=headers).json()
    assert page.input_value("#f-seed") == str(job["params"]["seed"]) and page.input_value("#f-width") == "128"

    cancel_then_final_state(page, shots)


def sign_in(page, base_url: str) -> None:
    page.goto(base_url)
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    page.locator("#f-prompt").wait_for()


def number(page, name: str) -> float:
    return float(page.input_value(f"#f-{name}"))


def png_file(name: str, color: tuple[int, int, int]) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, format="PNG")
    return {"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()}


SWITCHED = (
    "num_inference_steps",
    "width",
    "height",
    "stg_scale",
    "guidance_rescale",
    "audio_guidance_rescale",
)


def test_switching_the_pipeline_shows_its_defaults_and_fields(page, ltx_stages_server, tmp_path):
    """The family's own defaults per pipeline (read from the engine here), the fields each takes (the
    field table's `pipelines`); a value the user typed stays."""
    from helpers.ltx2 import stages_folder

    shots = Shots(page, tmp_path)
    engine = Engine.from_pretrained(stages_folder("2.0"), device="cpu", dtype="float32")
    base, hq = engine.defaults(prompt="x"), engine.defaults(prompt="x", pipeline="hq")
    assert [getattr(hq, name) for name in SWITCHED] != [getattr(base, name) for name in SWITCHED]
    sign_in(page, ltx_stages_server.base_url)
    assert [number(page, name) for name in SWITCHED] == [getattr(base, name) for name in SWITCHED]
    page.fill("#f-guidance_scale", "5")  # the user's own value
    page.select_option("#f-pipeline", "hq")
    assert [number(page, name) for name in SWITCHED] == [getattr(hq, name) for name in SWITCHED]
    assert page.input_value("#f-size-preset") == f"{hq.width}x{hq.height}"
    assert page.input_value("#f-guidance_scale") == "5"
    shots("pipeline-hq")

    page.select_option("#f-pipeline", "distilled")  # fixed steps, no guidance: not its fields
    for name in ("num_inference_steps", "guidance_scale", "sampler"):
        assert FIELDS[name].takes("distilled") is False, name
        assert page.locator(f"#f-{name}").is_hidden() and page.is_disabled(f"#f-{name}"), name
    page.select_option("#f-pipeline", "retake")  # its size is its source video's; the source is a file
    assert page.locator("#f-width").is_hidden() and page.locator("#f-num_frames").is_hidden()
    assert page.locator("#f-video").is_visible() and page.locator("#f-reference_video").is_hidden()
    shots("pipeline-retake")

    page.select_option("#f-pipeline", "one-stage")
    assert [number(page, name) for name in SWITCHED] == [getattr(base, name) for name in SWITCHED]
    assert page.input_value("#f-guidance_scale") == "5" and page.locator("#f-sampler").is_visible()

    page.fill("#f-width", "640")  # a size the user typed keeps both its sides
    page.select_option("#f-pipeline", "hq")
    assert (number(page, "width"), number(page, "height")) == (640, base.height)
    assert number(page, "num_inference_steps") == hq.num_inference_steps


def test_a_pipeline_the_checkpoint_cannot_run_is_greyed_out_with_why(page, ltx_server, tmp_path):
    """tiny-ltx2 has no latent upsampler: the half-size recipes are listed but cannot be chosen, each
    saying why (the family's own error, from /v1/fields); the one-stage and the retake (which waits for
    its video) can."""
    sign_in(page, ltx_server.base_url)
    option = page.locator('#f-pipeline option[value="hq"]')
    assert option.is_disabled() and "needs a latent upsampler" in option.inner_text()
    for runs in ("one-stage", "retake"):
        assert page.locator(f'#f-pipeline option[value="{runs}"]').is_enabled(), runs
    Shots(page, tmp_path)("pipeline-unavailable")


def test_keyframes_from_the_page_reach_the_server(page, ltx_server, tmp_path):
    """Several images with their frames (input_reference_frames): spread over the clip until the user types
    them; a frame outside the clip is the server's message beside the field; the job records the frames."""
    shots = Shots(page, tmp_path)
    base_url, headers = ltx_server.base_url, {"Authorization": f"Bearer {KEY}"}
    sign_in(page, base_url)
    fill(page, {"prompt": "from red to blue", "width": "64", "height": "64", "num_frames": "9"})
    fill(page, {"num_inference_steps": "2", "preview_every": "0"})
    images = [png_file("red.png", (200, 30, 30)), png_file("blue.png", (30, 30, 200))]
    page.set_input_files("#f-image", files=images)
    assert page.input_value("#f-image_frames") == "0,8"
    page.fill("#f-image_frames", "0,9")
    page.press("#f-image_frames", "Enter")
    error = page.locator("#f-image_frames-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert error.inner_text().startswith("input_reference_frames: image_frames='0,9' has frame 9, outside")
    shots("keyframes-refused")

    page.fill("#f-image_frames", "0,6")
    cards = page.locator(".card").count()  # the module's server keeps the jobs of the tests before
    page.press("#f-prompt", "Control+Enter")
    page.wait_for_function("n => document.querySelectorAll('.card').length > n", arg=cards, timeout=WAIT_MS)
    job_id = newest_card(page).get_attribute("data-job")
    page.locator(f".card[data-job='{job_id}'][data-status=completed]").wait_for(timeout=WAIT_MS)
    job = httpx.get(f"{base_url}/v1/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "completed" and job["params"]["image_frames"] == "0,6", job
    shots("keyframes-done")


def test_flux2_klein_page(page, klein_server, tmp_path):
    shots = Shots(page, tmp_path)
    base_url = klein_server.base_url
    page.goto(base_url)
    page.locator("#f-prompt").wait_for()
    assert unlabelled_inputs(page) == []
    assert page.locator("#f-num_frames").count() == 0  # a still-image family: no video fields
    assert page.get_attribute("#f-image", "multiple") is not None  # reference images for edits
    assert page.input_value("#f-num_inference_steps") == "4"  # the checkpoint's default
    shots("form")

    fill(page, {"prompt": "a cat in a hat", "width": "128", "height": "128"})
    invalid = {"prompt": "a cat in a hat", "size": "128x128", "num_inference_steps": 5000}
    message = check_invalid_value(
        page, base_url, {}, "/v1/images/generations", "num_inference_steps", "5000", invalid
    )
    assert "max_steps" in message
    shots("invalid-value")

    done = run_to_the_end(
        page, shots, {"num_inference_steps": str(LONG_STEPS["tiny-flux2-klein"]), "seed": "7"}
    )
    image = done.locator("img.result")
    image.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 128", arg=image.element_handle(), timeout=WAIT_MS
    )
    assert done.locator("a.download").get_attribute("download").endswith("-0.png")
    assert "Seed 7" in done.locator(".params").inner_text()
    shots("completed")

    cancel_then_final_state(page, shots)


def test_a_file_field_of_the_table_becomes_a_file_input(page, tmp_path, monkeypatch):
    """A field the table marks api="upload" (a video or a sound; the official pipelines bring them) is drawn
    as a labelled file input and sent as a multipart file under its server name, with no change to the
    page. Here a made-up `sound` field on the fake engine, stored like an image."""
    sound = RequestField("sound", str, "a file to follow", ("fake-video",), api="upload").describe()
    table = routes_jobs.describe
    monkeypatch.setattr(routes_jobs, "describe", lambda family: [*table(family), sound])
    monkeypatch.setitem(uploads.UPLOAD_FIELDS, "sound", ("image", "sound"))
    monkeypatch.setattr(fake_engine, "KNOWN", fake_engine.KNOWN | {"sound"})
    engine = fake_engine.FakeEngine("video")
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(png, format="PNG")
    with thread_server(create_app(engine, tmp_path / "data")) as base_url:
        page.goto(base_url)
        page.locator("#f-sound").wait_for()
        assert page.get_attribute("#f-sound", "type") == "file" and unlabelled_inputs(page) == []
        assert page.locator("fieldset:has(#f-sound) legend").inner_text() == "Input files"
        page.fill("#f-prompt", "follow the file")
        page.set_input_files(
            "#f-sound", files=[{"name": "a.png", "mimeType": "image/png", "buffer": png.getvalue()}]
        )
        page.press("#f-prompt", "Control+Enter")
        page.locator(".card[data-status=completed]").first.wait_for(timeout=WAIT_MS)
    assert len(engine.calls[-1]["sound"]) == 1 and "sound" in Path(engine.calls[-1]["sound"][0]).name
