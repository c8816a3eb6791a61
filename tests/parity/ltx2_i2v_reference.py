"""diffusers' LTX2ImageToVideoPipeline as the reference for ditto's image-to-video (float32 CPU).

diffusers encodes the image only when it draws its own noise; given `latents` (5-D, raw VAE space) are
normalised and used as they are, with latent frame 0 taken as the (clean) image. So the reference side
builds its starting latents the way its prepare_latents does — CRF re-compression,
video_processor.preprocess, the VAE posterior's mode, normalisation — writes them over frame 0 of the
shared noise, and hands both sides the same raw 5-D tensor (ditto overwrites frame 0 with its own
encoding of the image).
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch


def load_diffusers_i2v(folder):
    """LTX2ImageToVideoPipeline on a tiny folder, with given sigmas used unshifted (as ditto uses them)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2ImageToVideoPipeline

    pipe = LTX2ImageToVideoPipeline.from_pretrained(str(folder), torch_dtype=torch.float32)
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        pipe.scheduler.config, use_dynamic_shifting=False, shift=1.0, shift_terminal=None
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_image_tokens(pipe, image: PIL.Image.Image, height: int, width: int, crf: int) -> torch.Tensor:
    """Packed normalised tokens [1, H*W, C] of the image, as LTX2ImageToVideoPipeline prepares them."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_image2video import retrieve_latents
    from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf

    if crf:
        image = PIL.Image.fromarray(apply_image_conditioning_crf(np.array(image.convert("RGB")), crf))
    pixels = pipe.video_processor.preprocess(image, height=height, width=width).to(torch.float32)
    latent = retrieve_latents(pipe.vae.encode(pixels.unsqueeze(2)), None, "argmax")
    latent = pipe._normalize_latents(latent, pipe.vae.latents_mean, pipe.vae.latents_std)
    return pipe._pack_latents(latent)


def start_with_image(pipe, image, noise: torch.Tensor, kwargs: dict, crf: int) -> torch.Tensor:
    """Raw [B, C, F, H, W] latents: packed normalised `noise` with frame 0 set to diffusers' image tokens."""
    tokens = diffusers_image_tokens(pipe, image, kwargs["height"], kwargs["width"], crf)
    packed = noise.clone()
    packed[:, : tokens.shape[1]] = tokens
    frames = (kwargs["num_frames"] - 1) // pipe.vae_temporal_compression_ratio + 1
    ratio = pipe.vae_spatial_compression_ratio
    latents = pipe._unpack_latents(packed, frames, kwargs["height"] // ratio, kwargs["width"] // ratio)
    return pipe._denormalize_latents(latents, pipe.vae.latents_mean, pipe.vae.latents_std)


def run_diffusers_i2v(pipe, image, latents: torch.Tensor, kwargs: dict, crf: int):
    """diffusers from raw 5-D `latents` (start_with_image) conditioned on `image`."""
    kwargs = dict(kwargs)
    kwargs.pop("seed", None)
    out = pipe(
        image=image,
        latents=latents,
        image_crf=crf,
        generator=torch.Generator().manual_seed(0),
        use_cross_timestep=True,
        **kwargs,
    )
    return out.frames, out.audio
