"""ditto's image-to-video and keyframes vs the official ltx-pipelines path (combined_image_conditionings,
denoise_audio_video, the Euler loop) on tiny official-layout weights, same seed, float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ltx_official_reference import official_one_stage
from PIL import Image
from test_ltx_official import REQUEST

from ditto.engine import Engine
from ditto.pipelines.ltx2.conditioning.image_input import ImageCondition, prepared_pixels
from ditto.pipelines.ltx2.latents import (
    LatentShape,
    denormalize_audio_tokens,
    denormalize_video,
    pack_audio,
    unpack_audio,
)

from helpers.metrics import max_abs
from helpers.thresholds import check_official


def write_picture(path, width: int, height: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, np.full_like(x, 0.3 + 0.1 * seed)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def engines(official_checkpoints):
    return {
        v: Engine.from_pretrained(path, text_encoder=gemma, dtype="float32")
        for v, (path, gemma) in official_checkpoints.items()
    }


@pytest.mark.parametrize(("width", "height", "crf"), [(80, 50, 33), (41, 97, 33), (64, 64, 0), (200, 30, 18)])
def test_pixels_as_the_official_loader(tmp_path, width, height, crf):
    """CRF re-compression, aspect-preserving bilinear fill and centre crop, scaling: bit-equal."""
    import official_shims

    official_shims.install()
    from ltx_pipelines.utils.media_io import load_image_conditioning

    path = write_picture(tmp_path / "p.png", width, height, seed=1)
    ref = load_image_conditioning(path, 64, 96, torch.float32, torch.device("cpu"), crf=crf)
    ours = prepared_pixels(ImageCondition(np.asarray(Image.open(path).convert("RGB"))), 64, 96, crf)
    check_official("i2v_pixels", max_abs(ours, ref))


def compare(engines, official_checkpoints, version, images, ours_image, case, sampler="euler"):
    path, gemma = official_checkpoints[version]
    ref_video, ref_audio, _ = official_one_stage(path, gemma, REQUEST, sampler, images=images)
    engine = engines[version]
    result = engine.generate(**REQUEST, image=ours_image, sampler=sampler, output_type="latent")
    components = engine.pipeline.components
    ref_video = denormalize_video(ref_video, components.vae)
    shape = LatentShape(0, 0, 0, 0, ref_audio.shape[2], ref_audio.shape[1], ref_audio.shape[-1])
    ref_audio = unpack_audio(denormalize_audio_tokens(pack_audio(ref_audio), components.audio_vae), shape)
    check_official(f"{case}_video_latents", max_abs(result.latents["video"], ref_video))
    check_official(f"{case}_audio_latents", max_abs(result.latents["audio"], ref_audio))


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_image_to_video(engines, official_checkpoints, version, tmp_path):
    image = write_picture(tmp_path / "first.png", 80, 50, seed=2)  # resized and cropped to 64x64
    compare(engines, official_checkpoints, version, [(image, 0, 1.0, 33)], image, "i2v")


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_keyframes(engines, official_checkpoints, version, tmp_path):
    """A first frame plus an appended keyframe at pixel frame 8 with strength 0.6 (partly re-noised)."""
    first = write_picture(tmp_path / "first.png", 64, 64, seed=3)
    last = write_picture(tmp_path / "last.png", 96, 64, seed=4)
    images = [(first, 0, 1.0, 33), (last, 8, 0.6, 33)]
    compare(engines, official_checkpoints, version, images, [first, (last, 8, 0.6)], "keyframe")


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_res2s_with_images(engines, official_checkpoints, version, tmp_path):
    """res2s (official res2s_audio_video_denoising_loop, legacy mode: the SDE-noised states are blended
    back to the conditioning) with a kept first frame and a partly re-noised appended keyframe."""
    first = write_picture(tmp_path / "first.png", 80, 50, seed=2)
    last = write_picture(tmp_path / "last.png", 96, 64, seed=4)
    images = [(first, 0, 1.0, 33), (last, 8, 0.6, 33)]
    compare(engines, official_checkpoints, version, images, [first, (last, 8, 0.6)], "res2s_i2v", "res2s")


@pytest.mark.parametrize("pipeline", ["two-stage", "distilled"])
def test_stages_with_images(pipeline: str, tmp_path) -> None:
    """Both stages conditioned (images re-encoded at half, then full size), the recipe of ti2vid_two_stages
    / distilled; the stage checkpoint of test_ltx2_stages_official (2.0)."""
    from ltx2_stages_official import run_official
    from test_ltx2_stages_official import checkpoint, stages_request

    from ditto.pipelines.ltx2.latents import normalize_audio_tokens, normalize_video

    path, gemma, folder = checkpoint()
    first = write_picture(tmp_path / "first.png", 150, 100, seed=5)
    last = write_picture(tmp_path / "last.png", 192, 128, seed=6)
    distilled = pipeline == "distilled"
    request = stages_request(distilled)
    lora = folder / "distilled_lora" / "ltx-2-distilled-lora.safetensors"
    images = ((first, 0, 1.0, 33), (last, 8, 0.8, 33))
    ref_video, ref_audio = run_official(
        path, gemma, folder / "latent_upsampler", lora, request, distilled, images
    )
    engine = Engine.from_pretrained(folder, device="cpu", dtype="float32")
    result = engine.generate(
        **request, image=[first, (last, 8, 0.8)], pipeline=pipeline, output_type="latent"
    )
    parts = engine.pipeline.components
    video = normalize_video(result.latents["video"], parts.vae)
    audio = normalize_audio_tokens(pack_audio(result.latents["audio"]), parts.audio_vae)
    check_official("stages_i2v_video_latents", max_abs(video, ref_video))
    check_official("stages_i2v_audio_latents", max_abs(audio, pack_audio(ref_audio)))
