"""The step cache in LTX-2's recipes (tiny model, float32 CPU): stage 1 of two-stage is cached and stage 2
is not (the stats say why), the distilled pipeline refuses a cache, image-to-video keeps its image exactly,
and the decision reads the audio as well as the video."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ditto import Engine
from ditto.acceleration.step_cache.wiring import DISTILLED, NOT_CACHED_STAGE_2
from ditto.errors import InvalidParameter
from ditto.tiny.ltx2 import build_tiny

from helpers.ltx2 import tiny_ltx2

SMALL = dict(prompt="a red fox", height=64, width=64, num_frames=9, seed=3, output_type="latent")
GUIDED = dict(SMALL, guidance_scale=3.0, audio_guidance_scale=7.0, stg_scale=0.0, modality_scale=1.0)


@functools.cache
def staged() -> Engine:
    folder = Path(tempfile.mkdtemp(prefix="ditto-cache-ltx2-")) / "ltx2"
    atexit.register(shutil.rmtree, folder.parent, True)
    build_tiny(folder, "2.0", with_upsampler=True, with_distilled_lora=True)
    return Engine.from_pretrained(folder, device="cpu", dtype="float32")


@functools.cache
def plain() -> Engine:
    return Engine.from_pretrained(tiny_ltx2("2.0"))


def test_two_stage_caches_stage_one_only() -> None:
    request = dict(GUIDED, height=128, width=128, num_inference_steps=6, pipeline="two-stage")
    result = staged().generate(**request, cache="mask:compute=0-2+5")
    stats = result.cache_stats
    assert stats["denoise_stage_1"]["uncond"]["cached_steps"] == [3, 4]
    assert stats["denoise_stage_1"]["cond"]["cached_steps"] == [3, 4]
    assert stats["denoise_stage_2"] == {"off": NOT_CACHED_STAGE_2}
    never = staged().generate(**request, cache="dbcache:threshold=0")
    uncached = staged().generate(**request)
    assert all(torch.equal(never.latents[k], uncached.latents[k]) for k in ("video", "audio"))


def test_the_distilled_pipeline_refuses_a_cache() -> None:
    with pytest.raises(InvalidParameter, match="does not apply to the distilled LTX-2 pipeline"):
        staged().validate(**dict(SMALL, height=128, width=128), pipeline="distilled", cache="fast")
    assert DISTILLED["ltx2"].startswith("the distilled LTX-2 pipeline")


def picture(side: int) -> Image.Image:
    rng = np.random.RandomState(0)
    return Image.fromarray((rng.rand(side, side, 3) * 255).astype(np.uint8))


def test_image_to_video_keeps_the_image_tokens_with_the_cache_on() -> None:
    request = dict(GUIDED, num_inference_steps=6, pipeline="one-stage", image=picture(64))
    uncached = plain().generate(**request)
    never = plain().generate(**request, cache="mask:compute=all")
    assert all(torch.equal(never.latents[k], uncached.latents[k]) for k in ("video", "audio"))
    cached = plain().generate(**request, cache="mask:compute=0-1+5")
    assert cached.cache_stats["denoise"]["cond"]["cached_steps"] == [2, 3, 4]
    # Latents [B, C, F, H, W]: the first latent frame is the image's in both, the rest moved by the cache.
    assert torch.equal(cached.latents["video"][:, :, :1], uncached.latents["video"][:, :, :1])
    assert not torch.equal(cached.latents["video"][:, :, 1:], uncached.latents["video"][:, :, 1:])


def test_the_decision_reads_the_audio_too() -> None:
    """With the video's threshold loose (0.99) the audio's decides: strict (0.001) -> nothing skipped,
    ignored (1) -> the video alone lets steps skip."""
    request = dict(GUIDED, num_inference_steps=8, pipeline="one-stage")
    base = "dbcache:Fn=1,threshold=0.99,warmup=1,max_cached=-1"
    strict = plain().generate(**request, cache=f"{base},audio_threshold=0.001").cache_stats["denoise"]
    ignored = plain().generate(**request, cache=f"{base},audio_threshold=1").cache_stats["denoise"]
    assert strict["cond"]["cached"] == 0 and strict["uncond"]["cached"] == 0
    assert ignored["cond"]["cached"] > 0


def test_res2s_calls_are_passes_of_their_step() -> None:
    """res2s calls the model twice a step (and once more at the end): each call is a pass of its kind, the
    mask reads the step, a never-skipping spec is no cache."""
    request = dict(GUIDED, num_inference_steps=4, pipeline="one-stage", sampler="res2s")
    uncached = plain().generate(**request)
    never = plain().generate(**request, cache="dbcache:threshold=0")
    assert all(torch.equal(never.latents[k], uncached.latents[k]) for k in ("video", "audio"))
    cond = plain().generate(**request, cache="mask:compute=0+3").cache_stats["denoise"]["cond"]
    assert cond["cached_steps"] == [1, 1, 2, 2] and cond["computed"] == 2 + 2 + 1
