"""diffusers' two-stage LTX-2 recipe on a tiny folder: LTX2Pipeline (stage 1) -> LTX2LatentUpsamplePipeline ->
LTX2Pipeline with the distilled LoRA fused (stage 2, noise_scale = first stage-2 sigma), one generator for
all the noise, as ditto draws it."""

from __future__ import annotations

from pathlib import Path

import torch

# diffusers' LTX2Pipeline keywords with every guidance term off (its stage 2 and the distilled stage 1).
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


def run_diffusers_stages(
    folder: Path, lora: Path, request: dict, distilled: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """request: ditto's keywords (stage-1 `latents` packed, `audio_latents` raw, `sigmas` for two-stage);
    lora: the distilled LoRA file. The sigma tables are diffusers' own (pipelines/ltx2/utils.py)."""
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

    pipe, upsample = diffusers_pipes(folder)
    generator = torch.Generator().manual_seed(request["seed"])
    common = dict(prompt=request["prompt"], num_frames=request["num_frames"], use_cross_timestep=True)
    common.update(generator=generator, output_type="latent", return_dict=False)
    height, width = request["height"], request["width"]
    if distilled:
        pipe.load_lora_weights(str(lora))
        pipe.fuse_lora()
        first = dict(NO_GUIDANCE, sigmas=DISTILLED_SIGMA_VALUES)
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
        pipe.load_lora_weights(str(lora))
        pipe.fuse_lora()
    return pipe(
        **common,
        **NO_GUIDANCE,
        sigmas=STAGE_2_DISTILLED_SIGMA_VALUES,
        noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0],
        height=height,
        width=width,
        latents=upsampled,
        audio_latents=audio,
    )
