"""ditto's LTX-2 image-to-video against diffusers' LTX2ImageToVideoPipeline, same tiny folder, same
starting noise, image and sigmas (float32 CPU)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from ltx2_i2v_reference import load_diffusers_i2v, run_diffusers_i2v, start_with_image
from PIL import Image

from helpers.ltx2 import FULL_GUIDANCE, PROMPT, ditto_engine, start_latents, tiny_ltx2
from helpers.metrics import max_abs, psnr
from helpers.thresholds import check_at_least, check_at_most

GROUP = "ltx2_i2v_vs_diffusers"
SIZE = dict(height=64, width=96, num_frames=17, sigmas=[1.0, 0.6, 0.2])


@functools.cache
def diffusers_i2v(version: str):
    return load_diffusers_i2v(tiny_ltx2(version))


def picture(width: int, height: int, seed: int = 3) -> Image.Image:
    """A smooth colour picture (a gradient plus a disc): H.264 keeps it close, as with a real photo."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (height * 0.3) ** 2).astype(np.float32)
    rgb = np.stack([x / width, y / height, 0.5 + 0.4 * disc * np.sin(seed)], axis=-1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8))


def run_both(version: str, request: dict, crf: int, output_type: str):
    engine = ditto_engine(version)
    noise, audio = start_latents(engine, 1, **request)
    image = picture(request["width"], request["height"])
    pipe = diffusers_i2v(version)
    video = start_with_image(pipe, image, noise, request, crf)
    reference = run_diffusers_i2v(
        pipe, image, video, {**request, "audio_latents": audio, "output_type": output_type}, crf
    )
    result = engine.generate(
        **request,
        image=image,
        image_crf=crf,
        image_conditioning="diffusers",
        latents=video,
        audio_latents=audio,
        output_type=output_type,
    )
    return result, reference


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_latents_from_the_same_start(version: str) -> None:
    request = dict(**PROMPT, **FULL_GUIDANCE, **SIZE)
    result, (ref_video, ref_audio) = run_both(version, request, crf=33, output_type="latent")
    check_at_most(GROUP, "latents_max_abs", max_abs(result.latents["video"], ref_video), f"{version} video")
    check_at_most(GROUP, "latents_max_abs", max_abs(result.latents["audio"], ref_audio), f"{version} audio")


def test_official_rule_differs_only_through_rescale() -> None:
    """ditto's default (official) x0 on kept tokens equals diffusers exactly when no rescale reads their std."""
    request = dict(**PROMPT, **FULL_GUIDANCE, **SIZE)
    request.update(guidance_rescale=0.0, audio_guidance_rescale=0.0)
    engine = ditto_engine("2.0")
    noise, audio = start_latents(engine, 1, **request)
    image = picture(request["width"], request["height"])
    pipe = diffusers_i2v("2.0")
    video = start_with_image(pipe, image, noise, request, 33)
    ref_video, _ = run_diffusers_i2v(
        pipe, image, video, {**request, "audio_latents": audio, "output_type": "latent"}, 33
    )
    result = engine.generate(**request, image=image, latents=video, audio_latents=audio, output_type="latent")
    check_at_most(
        GROUP, "latents_max_abs", max_abs(result.latents["video"], ref_video), "official rule, no rescale"
    )


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_decoded_frames_and_audio(version: str) -> None:
    request = dict(**PROMPT, **FULL_GUIDANCE, **SIZE)
    result, (ref_frames, ref_audio) = run_both(version, request, crf=0, output_type="np")
    assert result.frames.shape == ref_frames[0].shape == (17, 64, 96, 3)
    check_at_least(GROUP, "frames_psnr_db", psnr(result.frames, ref_frames[0]), f"{version} frames")
    assert result.audio.shape == tuple(ref_audio[0].shape)
    check_at_most(GROUP, "audio_max_abs", max_abs(result.audio, ref_audio[0]), f"{version} audio")


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        (dict(image_crf=60), "image_crf", "is not an H.264 CRF in 0..51"),
        (dict(image_conditioning="sdxl"), "image_conditioning", "is not known"),
        (dict(pipeline="two-stage"), "pipeline", "needs a latent upsampler"),
    ],
)
def test_unsupported_requests_are_clear(extra: dict, field: str, problem: str) -> None:
    from ditto.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as caught:
        ditto_engine("2.0").validate(prompt="x", image=picture(64, 64), **extra)
    assert caught.value.field == field and problem in str(caught.value)


def test_a_one_pixel_image_needs_image_crf_zero() -> None:
    from ditto.errors import InvalidParameter

    engine, tiny = ditto_engine("2.0"), Image.new("RGB", (1, 1))
    with pytest.raises(InvalidParameter, match="too small to re-compress"):
        engine.validate(prompt="x", image=tiny)
    assert engine.validate(prompt="x", image=tiny, image_crf=0).image[0].pixels.shape == (1, 1, 3)
