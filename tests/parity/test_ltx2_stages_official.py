"""ditto's two-stage and distilled LTX-2 against the official ltx-pipelines recipe on the same weights: a tiny
official single file (built through ditto's rename table), converted to a diffusers folder for ditto, with
the same upsampler tensors and the same official-layout distilled LoRA on both sides; float32 CPU; each
side draws its own noise from the same seed (the official GaussianNoiser draw, which ditto reproduces)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from ltx2_stages_official import run_official  # the official side; conftest.py installed its shims

from helpers.ltx2 import FULL_GUIDANCE, PROMPT
from helpers.metrics import max_abs
from helpers.thresholds import check_at_most

GROUP = "ltx2_stages"
REQUEST = dict(PROMPT, seed=9)
REQUEST.update(height=128, width=192, num_frames=9, frame_rate=24.0)
GUIDANCE = dict(FULL_GUIDANCE, num_inference_steps=3)
_ROOT = Path(tempfile.mkdtemp(prefix="ditto-ltx2-stages-official-"))
# Removed at the session's end: checkpoint() is cached and test_ltx_official_i2v.py reuses it later.
atexit.register(shutil.rmtree, _ROOT, True)


def stages_request(distilled: bool) -> dict:
    """The request both sides run: guided for the two-stage pipeline; the distilled one takes no guidance and
    no negative prompt (the official one encodes the prompt alone; ditto rejects one a client sends)."""
    if distilled:
        return {key: value for key, value in REQUEST.items() if key != "negative_prompt"}
    return dict(REQUEST, **GUIDANCE)


@functools.cache
def checkpoint(version: str = "2.0") -> tuple[Path, Path, Path]:
    """(official file, gemma folder, diffusers folder with latent_upsampler/ and distilled_lora/)."""
    from ditto.loading.convert_cli import official_to_folder
    from ditto.tiny.ltx2 import DISTILLED_LORA_NAME, build_tiny_distilled_lora, build_tiny_upsampler
    from ditto.tiny.ltx_official import build_tiny_official, diffusers_configs

    root = _ROOT / version
    path, gemma = build_tiny_official(root, version)
    folder = root / "folder"
    official_to_folder(path, folder, text_encoder=gemma)
    build_tiny_upsampler(folder / "latent_upsampler")
    config = diffusers_configs(version)["transformer"]
    build_tiny_distilled_lora(folder / "distilled_lora" / DISTILLED_LORA_NAME, version, config)
    return path, gemma, folder


@pytest.mark.parametrize("version", ["2.0", "2.3"])
@pytest.mark.parametrize("pipeline", ["two-stage", "distilled"])
def test_stages_match_official(pipeline: str, version: str) -> None:
    from ditto import Engine
    from ditto.pipelines.ltx2.latents import normalize_audio_tokens, normalize_video, pack_audio

    path, gemma, folder = checkpoint(version)
    distilled = pipeline == "distilled"
    request = stages_request(distilled)
    lora = folder / "distilled_lora" / "ltx-2-distilled-lora.safetensors"
    ref_video, ref_audio = run_official(path, gemma, folder / "latent_upsampler", lora, request, distilled)
    engine = Engine.from_pretrained(folder, device="cpu", dtype="float32")
    result = engine.generate(**request, pipeline=pipeline, output_type="latent")
    parts = engine.pipeline.components
    with torch.no_grad():  # ditto returns raw latents; the official state is normalised
        video = normalize_video(result.latents["video"], parts.vae)
        audio = normalize_audio_tokens(pack_audio(result.latents["audio"]), parts.audio_vae)
    assert video.shape == ref_video.shape
    case = f"{version} {pipeline}"
    check_at_most(GROUP, "vs_official_latents_max_abs", max_abs(video, ref_video), f"{case} video")
    check_at_most(
        GROUP, "vs_official_latents_max_abs", max_abs(audio, pack_audio(ref_audio)), f"{case} audio"
    )
