"""LTX-2 decoding: video latents through the video VAE, audio latents through the audio VAE and vocoder."""

from __future__ import annotations

import torch

from ditto.pipelines.ltx2.components import LTX2Components


def decode_video(components: LTX2Components, latents: torch.Tensor) -> torch.Tensor:
    """Raw (denormalised) [B, C, F, H, W] latents -> frames [B, F, H, W, 3] float32 in [0, 1]."""
    vae = components.vae
    timestep = None
    if vae.config.timestep_conditioning:
        # decode_timestep = 0 (diffusers' and the official default): no decode noise is mixed in.
        timestep = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)
    video = _decode(components, latents.to(vae.dtype), timestep)
    return (video.float() * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1)


def _decode(components: LTX2Components, latents: torch.Tensor, timestep: torch.Tensor | None) -> torch.Tensor:
    """The video VAE's decode; with a parallel engine, over its ranks in bands of rows (parallel/vae.py)."""
    vae, mesh = components.vae, components.parallel
    if mesh is not None and mesh.config.vae:
        from ditto.parallel.vae import can_split, decode_in_bands

        if can_split(latents.shape[3], mesh.world):
            return decode_in_bands(vae.decoder, latents, timestep, mesh.world)
    return vae.decode(latents, timestep, return_dict=False)[0]


def decode_audio(components: LTX2Components, latents: torch.Tensor) -> torch.Tensor:
    """Raw [B, C, L, M] audio latents -> waveform [B, channels, samples] float32 (vocoder in float32)."""
    mel = components.audio_vae.decode(latents.to(components.audio_vae.dtype), return_dict=False)[0]
    return components.vocoder(mel.float()).float()


def sample_rate(components: LTX2Components) -> int:
    return int(components.vocoder.config.output_sampling_rate)


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A GPU tensor's copy in page-locked host memory: the 570 MB of float32 frames of a 768x512x121 video
    took 0.36 s through pageable memory on an H100 host (page faults at ~1.6 GB/s; benchmarks/NOTES.md)."""
    if tensor.device.type != "cuda":
        return tensor.cpu()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    return host.copy_(tensor)
