"""Tiny LTX-2 folders built once per test process, and the engine / diffusers pipelines on them."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from ditto.tiny.ltx2 import DISTILLED_LORA_NAME, build_tiny

PROMPT = dict(prompt="a red fox in the snow", negative_prompt="blurry, low quality")
# Every term of the official multimodal guider on (the official LTX-2 defaults, STG at the last tiny block).
FULL_GUIDANCE = dict(
    guidance_scale=3.0,
    stg_scale=1.0,
    modality_scale=3.0,
    guidance_rescale=0.7,
    audio_guidance_scale=7.0,
    audio_stg_scale=1.0,
    audio_modality_scale=3.0,
    audio_guidance_rescale=0.7,
    spatio_temporal_guidance_blocks=[1],
)

_ROOT = Path(tempfile.mkdtemp(prefix="ditto-tiny-ltx2-"))
atexit.register(shutil.rmtree, _ROOT, True)


@functools.cache
def tiny_ltx2(version: str) -> Path:
    folder = _ROOT / f"ltx{version}"
    build_tiny(folder, version)
    return folder


@functools.cache
def stages_folder(version: str = "2.0") -> Path:
    """A tiny folder with the latent upsampler and the distilled LoRA (two-stage and distilled recipes)."""
    folder = _ROOT / f"stages{version}"
    build_tiny(folder, version, with_upsampler=True, with_distilled_lora=True)
    return folder


def distilled_lora(folder: Path) -> Path:
    return folder / "distilled_lora" / DISTILLED_LORA_NAME


@functools.cache
def ditto_engine(version: str):
    from ditto import Engine

    return Engine.from_pretrained(tiny_ltx2(version), device="cpu", dtype="float32")


def start_latents(engine, batch: int, **request) -> tuple[torch.Tensor, torch.Tensor]:
    """Random starting points for both sides: packed video [B, T, C], raw audio [B, C, L, M]."""
    params = engine.validate(**request)
    shape = engine.pipeline.latent_shape(params)
    generator = torch.Generator().manual_seed(1234)
    video = torch.randn(batch, shape.video_tokens, shape.channels, generator=generator)
    audio = torch.randn(
        batch, shape.audio_channels, shape.audio_frames, shape.audio_mel_bins, generator=generator
    )
    return video, audio


def denoise_loop(pipeline, request: dict, share_prefix: bool, features=(), sampler: str = "euler"):
    """The stage's sampling loop alone (Euler or res2s) on `request`, with `features` wrapping its block
    loop and STG prefix reuse on or off; returns the final (video, audio) latents."""
    import dataclasses

    from ditto.pipelines.ltx2 import steps
    from ditto.pipelines.ltx2.denoise import denoise
    from ditto.pipelines.ltx2.res2s import denoise_res2s

    components, params = pipeline.components, pipeline.validate(**request)
    loop = denoise_res2s if sampler == "res2s" else denoise
    with torch.inference_mode():  # as Engine.generate runs
        prompts = steps.encode_prompts(components, params)
        inputs = steps.prepare(components, params, prompts, torch.Generator().manual_seed(3))
        inputs = dataclasses.replace(inputs, share_prefix=share_prefix)
        return loop(components.transformer, components.dtype, inputs, lambda *_: None, list(features))


class BlockCounter:
    """A loop feature counting the blocks each pass kind runs (inside a step cache: only what it computes)."""

    handles_resumed_plans = True

    def __init__(self) -> None:
        self.blocks: dict = {}  # PassKind -> blocks run

    def run_blocks(self, plan, streams, ctx, inner):
        for kind in ctx.kinds:
            self.blocks[kind] = self.blocks.get(kind, 0) + len(plan)
        return inner(plan, streams, ctx)
