"""diffusers' two-stage LTX-2 recipe on a tiny folder: LTX2Pipeline (stage 1) -> LTX2LatentUpsamplePipeline ->
LTX2Pipeline with the distilled LoRA fused (stage 2, noise_scale = first stage-2 sigma), one generator for
all the noise, as ditto draws it."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from ditto.pipelines.ltx2.params import NO_GUIDANCE
from ditto.pipelines.ltx2.recipes.distilled import DISTILLED_SIGMAS
from ditto.pipelines.ltx2.steps import STAGE_2_SIGMAS
from ditto.tiny.ltx2 import DISTILLED_LORA_NAME, build_tiny

_ROOT = Path(tempfile.mkdtemp(prefix="ditto-tiny-ltx2-stages-"))
# Removed when the session ends, not when a test module does: the folder is cached (functools.cache)
# and shared by several test modules, in whatever order they run.
atexit.register(shutil.rmtree, _ROOT, True)


@functools.cache
def stages_folder(version: str = "2.0") -> Path:
    folder = _ROOT / f"ltx{version}"
    build_tiny(folder, version, with_upsampler=True, with_distilled_lora=True)
    return folder


def distilled_lora(folder: Path) -> Path:
    return folder / "distilled_lora" / DISTILLED_LORA_NAME


def diffusers_pipes(folder: Path):
    from diffusers import LTX2LatentUpsamplePipeline
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from ltx2_reference import load_diffusers_ltx2

    pipe = load_diffusers_ltx2(folder, verbatim_sigmas=True)
    upsampler = LTX2LatentUpsamplerModel.from_pretrained(
        str(folder / "latent_upsampler"), torch_dtype=torch.float32
    )
    upsample = LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=upsampler)
    upsample.set_progress_bar_config(disable=True)
    return pipe, upsample


def run_diffusers_stages(folder: Path, request: dict, distilled: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """request: ditto's keywords (stage-1 `latents` packed, `audio_latents` raw, `sigmas` for two-stage)."""
    pipe, upsample = diffusers_pipes(folder)
    generator = torch.Generator().manual_seed(request["seed"])
    common = dict(prompt=request["prompt"], num_frames=request["num_frames"], use_cross_timestep=True)
    common.update(generator=generator, output_type="latent", return_dict=False)
    height, width = request["height"], request["width"]
    if distilled:
        pipe.load_lora_weights(str(distilled_lora(folder)))
        pipe.fuse_lora()
        first = dict(NO_GUIDANCE, sigmas=DISTILLED_SIGMAS[:-1])
    else:
        guidance = {k: v for k, v in request.items() if "guidance" in k or "_scale" in k}
        first = dict(guidance, sigmas=request["sigmas"], negative_prompt=request["negative_prompt"])
    video, audio = pipe(
        **common,
        **first,
        height=height // 2,
        width=width // 2,
        latents=request["latents"],
        audio_latents=request["audio_latents"],
    )
    upsampled = upsample(
        latents=video, height=height // 2, width=width // 2, output_type="latent", return_dict=False
    )[0]
    if not distilled:
        pipe.load_lora_weights(str(distilled_lora(folder)))
        pipe.fuse_lora()
    return pipe(
        **common,
        **NO_GUIDANCE,
        sigmas=STAGE_2_SIGMAS[:-1],
        noise_scale=STAGE_2_SIGMAS[0],
        height=height,
        width=width,
        latents=upsampled,
        audio_latents=audio,
    )
