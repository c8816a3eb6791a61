"""ditto's hq, keyframe-interpolation, ic-lora, retake and audio-to-video against the official ltx-pipelines 1.0.0
code (tests/parity/ltx2_recipes_official.py) on the same tiny weights, LTX-2.0 and LTX-2.3, float32 CPU:
a tiny official single file converted to a diffusers folder for ditto, the same upsampler tensors, the
same official-layout distilled LoRA and IC-LoRA on both sides, each side drawing its own noise from the
same seed. Final video and audio latents (normalised) are compared."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import official_shims
import pytest
import torch
from ltx2_recipes_official import (
    Checkpoint,
    official_audio_to_video,
    official_hq,
    official_ic_lora,
    official_keyframe_interpolation,
    official_retake,
)
from test_ltx_official_i2v import write_picture

from helpers.ltx2 import FULL_GUIDANCE, PROMPT
from helpers.metrics import max_abs
from helpers.thresholds import check_at_most

GROUP = "ltx2_recipes"
VERSIONS = ("2.0", "2.3")
REQUEST = dict(PROMPT, seed=11, height=128, width=128, num_frames=9, frame_rate=24.0)
GUIDED = dict(FULL_GUIDANCE, num_inference_steps=2)
_ROOT = Path(tempfile.mkdtemp(prefix="ditto-ltx2-recipes-official-"))
atexit.register(shutil.rmtree, _ROOT, True)


@functools.cache
def checkpoint(version: str) -> Checkpoint:
    """test_ltx2_stages_official's tiny checkpoint of `version` (built once per session) and an IC-LoRA."""
    from test_ltx2_stages_official import checkpoint as stages_checkpoint

    from ditto.tiny.ltx2 import DISTILLED_LORA_NAME, build_tiny_ic_lora
    from ditto.tiny.ltx_official import diffusers_configs

    path, gemma, folder = stages_checkpoint(version)
    ic_lora = _ROOT / version / "ic_lora.safetensors"
    build_tiny_ic_lora(ic_lora, version, diffusers_configs(version)["transformer"])
    return Checkpoint(path, gemma, folder, folder / "distilled_lora" / DISTILLED_LORA_NAME, ic_lora)


@functools.cache
def engine(version: str):
    from ditto import Engine

    ckpt = checkpoint(version)
    return Engine.from_pretrained(ckpt.folder, device="cpu", dtype="float32", ic_lora=str(ckpt.ic_lora))


@functools.cache
def media() -> dict[str, Path]:
    """A source MP4 with 48 kHz stereo sound (resampled to the audio VAE's 16 kHz on both sides), a control
    video, two pictures."""
    from ditto.media.video import write_mp4

    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:128, 0:128].astype(np.float32) / 128
    frames = np.stack([np.stack([x, y, np.full_like(x, t / 9)], -1) for t in range(9)])
    frames = np.clip(frames + rng.normal(0, 0.05, frames.shape), 0, 1)
    time = np.arange(int(48000 * 0.6)) / 48000
    sound = 0.4 * np.stack([np.sin(2 * np.pi * 330 * time), np.sin(2 * np.pi * 523 * time + 1)])
    source = write_mp4(_ROOT / "source.mp4", frames, 24.0, sound.astype(np.float32), 48000)
    control = write_mp4(_ROOT / "control.mp4", frames[:, ::2, 16:112], 24.0)
    first = Path(write_picture(_ROOT / "first.png", 96, 64, seed=3))
    last = Path(write_picture(_ROOT / "last.png", 64, 80, seed=4))
    return {"source": source, "control": control, "first": first, "last": last}


def compare(version: str, case: str, result, ref_video: torch.Tensor, ref_audio: torch.Tensor) -> None:
    from ditto.pipelines.ltx2.latents import normalize_audio_tokens, normalize_video, pack_audio

    parts = engine(version).pipeline.components
    with torch.no_grad():  # ditto returns raw latents; the official state is normalised
        video = normalize_video(result.latents["video"], parts.vae)
        audio = normalize_audio_tokens(pack_audio(result.latents["audio"]), parts.audio_vae)
    assert video.shape == ref_video.shape, (video.shape, ref_video.shape)
    check_at_most(GROUP, f"{case}_video", max_abs(video, ref_video), f"{case} {version} video")
    check_at_most(GROUP, f"{case}_audio", max_abs(audio, pack_audio(ref_audio)), f"{case} {version} audio")


def generate(version: str, **request):
    return engine(version).generate(**request, output_type="latent")


@pytest.mark.parametrize("version", VERSIONS)
def test_hq(version: str) -> None:
    request = dict(REQUEST, num_inference_steps=2, spatio_temporal_guidance_blocks=[1])
    official = dict(
        request,
        guidance_scale=3.0,
        stg_scale=0.0,
        guidance_rescale=0.45,
        modality_scale=3.0,
        audio_guidance_scale=7.0,
        audio_stg_scale=0.0,
        audio_guidance_rescale=1.0,
        audio_modality_scale=3.0,
    )  # fmt: skip  (the HQ defaults, which ditto fills in)
    ref_video, ref_audio = official_hq(checkpoint(version), official)
    compare(version, "hq", generate(version, **request, pipeline="hq"), ref_video, ref_audio)


@pytest.mark.parametrize("version", VERSIONS)
def test_keyframe_interpolation(version: str) -> None:
    files = media()
    images = ((str(files["first"]), 0, 1.0, 33), (str(files["last"]), 8, 0.8, 33))
    request = dict(REQUEST, **GUIDED)
    ref_video, ref_audio = official_keyframe_interpolation(checkpoint(version), request, images)
    ours = [f"{files['first']}:0", (str(files["last"]), 8, 0.8)]
    result = generate(version, **request, pipeline="keyframe-interpolation", image=ours)
    compare(version, "keyframe_interpolation", result, ref_video, ref_audio)


@pytest.mark.parametrize("version", VERSIONS)
def test_ic_lora(version: str) -> None:
    files = media()
    images = ((str(files["first"]), 0, 1.0, 33),)
    ref_video, ref_audio = official_ic_lora(checkpoint(version), REQUEST, files["control"], 2, images)
    result = generate(
        version,
        **REQUEST,
        pipeline="ic-lora",
        reference_video=str(files["control"]),
        image=str(files["first"]),
    )
    compare(version, "ic_lora", result, ref_video, ref_audio)


@pytest.mark.parametrize(
    ("version", "regenerate", "official_sigmas"),
    [("2.0", "both", False), ("2.3", "both", False), ("2.0", "audio", True)],
)
def test_retake(version: str, regenerate: str, official_sigmas: bool) -> None:
    """One guided stage at the source's size; the third case also gives the official sigmas explicitly
    (ditto's own schedule is the official torch float32 arithmetic: the same run)."""
    from ltx_core.components.schedulers import LTX2Scheduler

    official_shims.require_torchaudio()
    request = dict(PROMPT, seed=11, **GUIDED, start_time=0.1, end_time=0.3)
    source = media()["source"]
    ref_video, ref_audio = official_retake(checkpoint(version), request, source, regenerate)
    ours = dict(request, pipeline="retake", video=str(source), regenerate=regenerate)
    if official_sigmas:
        ours.pop("num_inference_steps")
        ours["sigmas"] = LTX2Scheduler().execute(steps=request["num_inference_steps"]).tolist()[:-1]
    case = f"retake_{regenerate}" + ("_official_sigmas" if official_sigmas else "")
    compare(version, case, generate(version, **ours), ref_video, ref_audio)


@pytest.mark.parametrize("version", VERSIONS)
def test_audio_to_video(version: str) -> None:
    official_shims.require_torchaudio()
    request = dict(REQUEST, **GUIDED)
    source = media()["source"]
    ref_video, ref_audio, sound = official_audio_to_video(checkpoint(version), request, source)
    compare(version, "audio_to_video", generate(version, **request, pipeline="audio-to-video", audio=str(source)),
            ref_video, ref_audio)  # fmt: skip
    result = engine(version).generate(**request, pipeline="audio-to-video", audio=str(source))
    # The output's sound is the given one, as read (official: the decoded file, not the audio VAE's).
    assert result.sample_rate == sound.sampling_rate
    check_at_most(GROUP, "audio_to_video_sound", max_abs(result.audio, sound.waveform[0]), f"{version} sound")
