"""LTX-2 two-stage and distilled pipelines, as ltx-pipelines 1.0.0 runs them (ti2vid_two_stages.py,
distilled.py).

two-stage: stage 1 at half width/height with the multimodal guider and the official schedule; the video
latent goes through the x2 latent upsampler in VAE space (un-normalised before, normalised after, as
ltx_core's upsample_video); stage 2 at full size with the distilled LoRA (applied beside the weights
by default, fused as the official code does with distilled_lora_mode="fuse"), the 3 fixed stage-2 sigmas
and no guidance, after fresh noise from the same generator is mixed into the video and the stage-1 audio
at the first stage-2 sigma (ltx_core GaussianNoiser with noise_scale = sigma_0).
distilled: the same two stages with the 8 fixed distilled sigmas in stage 1 and no guidance anywhere; the
distilled weights (the distilled LoRA fused, when the checkpoint is not itself distilled) in both stages.

Both reuse the one-stage pieces: prompt encoding, latent preparation, the one denoising loop, decoding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ditto.engine_options import DISTILLED_LORA_MODES
from ditto.errors import CheckpointError, InvalidParameter
from ditto.loading.lora import LoraFile, read_lora
from ditto.loading.lora_ltx2 import ltx2_lora_key
from ditto.loading.lora_side import SideFactors
from ditto.pipelines.base import ProgressCallback, StageTimer
from ditto.pipelines.ltx2_components import LTX2Components
from ditto.pipelines.ltx2_denoise import DenoiseInputs
from ditto.pipelines.ltx2_latents import (
    LatentShape,
    denormalize_video,
    normalize_video,
    official_noise,
    pack_video,
    unpack_video,
)
from ditto.pipelines.ltx2_params import LTX2Params
from ditto.request import check_multiple
from ditto.result import Result
from ditto.runtime.progress import Progress
from ditto.sampling.guidance import GuiderParams

if TYPE_CHECKING:
    from ditto.pipelines.ltx2 import LTX2Pipeline

# ltx_pipelines/utils/constants.py (1.0.0): DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES.
DISTILLED_SIGMAS = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0]
STAGE_2_SIGMAS = [0.909375, 0.725, 0.421875, 0.0]
PIPELINES = ("one-stage", "two-stage", "distilled")
UNGUIDED = GuiderParams(cfg_scale=1.0, stg_scale=0.0, modality_scale=1.0, rescale=0.0)
NO_GUIDANCE = dict(
    guidance_scale=1.0,
    stg_scale=0.0,
    modality_scale=1.0,
    guidance_rescale=0.0,
    audio_guidance_scale=1.0,
    audio_stg_scale=0.0,
    audio_modality_scale=1.0,
    audio_guidance_rescale=0.0,
)
UPSAMPLER_DIR = "latent_upsampler"
DISTILLED_LORA_DIR = "distilled_lora"


def attach_stage_two_parts(
    components: LTX2Components,
    folder: Path,
    upsampler: str | Path | None = None,
    distilled_lora: str | Path | None = None,
) -> None:
    """Load the latent upsampler (diffusers' class) and find the distilled LoRA: given paths first, else the
    checkpoint folder's `latent_upsampler/` and `distilled_lora/*.safetensors`."""
    upsampler_dir = Path(upsampler) if upsampler else Path(folder) / UPSAMPLER_DIR
    if upsampler_dir.is_dir():
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        model = LTX2LatentUpsamplerModel.from_pretrained(str(upsampler_dir), torch_dtype=components.dtype)
        components.latent_upsampler = model.to(components.device).eval().requires_grad_(False)
    elif upsampler:
        raise CheckpointError(f"upsampler={upsampler!r} is not a diffusers latent upsampler folder")
    if distilled_lora:
        components.distilled_lora = Path(distilled_lora)
        return
    found = sorted((Path(folder) / DISTILLED_LORA_DIR).glob("*.safetensors"))
    if len(found) > 1:
        raise CheckpointError(
            f"{folder / DISTILLED_LORA_DIR} holds {len(found)} LoRA files; pass distilled_lora="
        )
    components.distilled_lora = found[0] if found else None


def check_distilled_lora_mode(mode: str) -> str:
    if mode not in DISTILLED_LORA_MODES:
        raise InvalidParameter(
            "distilled_lora_mode", mode, "is not known", f"use one of {list(DISTILLED_LORA_MODES)}"
        )
    return mode


def default_pipeline(components: LTX2Components) -> str:
    """The official recommendation (two-stage) where the checkpoint has what it needs; one-stage otherwise."""
    ready = components.latent_upsampler is not None and components.distilled_lora is not None
    return "two-stage" if ready else "one-stage"


def check_stages(raw: LTX2Params, params: LTX2Params, components: LTX2Components) -> None:
    """What the multi-stage pipelines need beyond the one-stage checks (raw: the request before defaults)."""
    if params.pipeline not in PIPELINES:
        raise InvalidParameter("pipeline", params.pipeline, "is not known", f"use one of {list(PIPELINES)}")
    if params.pipeline == "one-stage":
        return
    if params.sampler != "euler":
        # The stages run Euler only; running it silently when res2s was asked would mislead.
        raise InvalidParameter(
            "sampler", params.sampler, f"is not supported by pipeline={params.pipeline!r} (Euler only)",
            'use pipeline="one-stage" for res2s',
        )  # fmt: skip
    # Stage 1 runs at half size and the VAE compresses 32x, so both sides must be multiples of 64.
    check_multiple("height", params.height, 64)
    check_multiple("width", params.width, 64)
    if components.latent_upsampler is None:
        raise InvalidParameter(
            "pipeline",
            params.pipeline,
            f"needs a latent upsampler ({UPSAMPLER_DIR}/ in the checkpoint folder)",
        )
    if params.pipeline == "two-stage" and components.distilled_lora is None:
        raise InvalidParameter(
            "pipeline",
            "two-stage",
            f"needs the distilled LoRA for stage 2 ({DISTILLED_LORA_DIR}/*.safetensors or distilled_lora=)",
            'use pipeline="distilled" with a distilled checkpoint',
        )
    if params.pipeline == "distilled":
        for name in ("num_inference_steps", "sigmas"):
            if getattr(raw, name) is not None:
                raise InvalidParameter(
                    name, getattr(raw, name), "is fixed by the distilled pipeline (8 + 3 sigmas)"
                )


def stage_one_params(params: LTX2Params, generator: torch.Generator) -> LTX2Params:
    """Half width and height, the shared generator; for distilled, its fixed sigmas and no guidance."""
    changes = dict(height=params.height // 2, width=params.width // 2, generator=generator)
    if params.pipeline == "distilled":
        changes.update(NO_GUIDANCE, sigmas=DISTILLED_SIGMAS)
    return dataclasses.replace(params, **changes)


def run_stages(pipe: LTX2Pipeline, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    components = pipe.components
    timer = StageTimer(components.device)
    generator = params.generator or pipe._generator(params.seed)
    first = stage_one_params(params, generator)
    stage_two_steps = len(STAGE_2_SIGMAS) - 1
    steps = (
        len(DISTILLED_SIGMAS) - 1 if params.pipeline == "distilled" else _stage_one_steps(first)
    ) + stage_two_steps
    with timer.stage("text encoding"):
        positive, negative = pipe._encode(first)
    with distilled_weights(pipe, params.pipeline == "distilled"):
        with timer.stage("stage 1"):
            inputs = pipe._prepare(first, positive, negative)
            counter = Progress(steps, progress)
            video, audio = pipe._denoise(inputs, counter, "stage 1")
        with timer.stage("upsampling"):
            shape = pipe.latent_shape(params)
            video = upsample_tokens(components, video, inputs.shape)
        with distilled_weights(pipe, params.pipeline == "two-stage"), timer.stage("stage 2"):
            second = stage_two_inputs(pipe, params, inputs, shape, video, audio, generator)
            video, audio = pipe._denoise(second, counter, "stage 2")
    return pipe._finish(params, shape, video, audio, timer)


def _stage_one_steps(params: LTX2Params) -> int:
    return (
        len(params.sigmas) - (params.sigmas[-1] == 0.0)
        if params.sigmas is not None
        else params.num_inference_steps
    )


@contextmanager
def distilled_weights(pipe: LTX2Pipeline, active: bool) -> Iterator[None]:
    """The distilled LoRA on the transformer for the block, off after it (or nothing, for a checkpoint that
    is itself distilled). `pipe.distilled_lora_mode`: "side" (default) applies it beside the weights at run
    time, factors moved to the device once per pipeline; "fuse" fuses it in place as the official code does
    and unfuses it exactly after (a pass over 18.5 B weights per request at full size)."""
    if not active or pipe.components.distilled_lora is None:
        yield
        return
    lora = _distilled_lora_file(pipe)
    if pipe.distilled_lora_mode == "fuse":
        pipe.loras.fuse(lora, 1.0)
        try:
            yield
        finally:
            pipe.loras.unfuse_last()
        return
    pipe.lora_side.attach(_distilled_side_factors(pipe, lora))
    try:
        yield
    finally:
        pipe.lora_side.detach()


def _distilled_lora_file(pipe: LTX2Pipeline) -> LoraFile:
    if getattr(pipe, "_distilled_lora_file", None) is None:
        pipe._distilled_lora_file = read_lora(pipe.components.distilled_lora, ltx2_lora_key)  # read once
    return pipe._distilled_lora_file


def _distilled_side_factors(pipe: LTX2Pipeline, lora: LoraFile) -> SideFactors:
    """The factors on the device, built on first use and kept with the file they came from (a new file,
    e.g. set by a benchmark, is prepared again)."""
    cached = getattr(pipe, "_distilled_side", None)
    if cached is None or cached[0] is not lora:
        cached = (lora, pipe.lora_side.prepare(lora, 1.0))
        pipe._distilled_side = cached
    return cached[1]


def upsample_tokens(components: LTX2Components, tokens: torch.Tensor, shape: LatentShape) -> torch.Tensor:
    """Packed normalised video tokens of stage 1 -> packed normalised tokens at twice the height and width."""
    upsampler, vae = components.latent_upsampler, components.vae
    latents = denormalize_video(unpack_video(tokens, shape), vae)
    upsampled = upsampler(latents.to(upsampler.dtype)).float()
    return pack_video(normalize_video(upsampled, vae))


def stage_two_inputs(
    pipe: LTX2Pipeline,
    params: LTX2Params,
    first: DenoiseInputs,
    shape: LatentShape,
    video: torch.Tensor,
    audio: torch.Tensor,
    generator: torch.Generator,
) -> DenoiseInputs:
    """Stage-2 starting point: noise * sigma_0 + latent * (1 - sigma_0), video then audio from the shared
    generator, in float32 (the official noiser's arithmetic), and no guidance."""
    components = pipe.components
    sigmas = torch.tensor(STAGE_2_SIGMAS, dtype=torch.float32, device=components.device)
    # Images condition stage 2 again, re-encoded at full size (ti2vid_two_stages' stage_2_conditionings).
    conditioning = pipe._conditioning(params, shape, video.shape[0])
    extra = conditioning.extra_tokens if conditioning is not None else 0
    noise_video, noise_audio = official_noise(
        video.shape[0], shape, generator, components.dtype, components.device, extra
    )
    scale = sigmas[0]
    if conditioning is not None:
        video = conditioning.initial(noise_video, base=video, noise_scale=scale)
    else:
        video = noise_video * scale + video * (1 - scale)
    return dataclasses.replace(
        first,
        conditioning=conditioning,
        video=video,
        audio=noise_audio * scale + audio * (1 - scale),
        negative=None,
        sigmas=sigmas,
        shape=shape,
        video_guider=UNGUIDED,
        audio_guider=UNGUIDED,
        stg_blocks=[],
    )
