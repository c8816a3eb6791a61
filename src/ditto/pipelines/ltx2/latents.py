"""LTX-2 latent layout: packing [B, C, F, H, W] <-> [B, tokens, C], audio [B, C, L, M] <-> [B, L, C*M],
per-channel normalisation, and the official initial noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ditto.errors import InvalidParameter
from ditto.pipelines.ltx2.components import LTX2Components
from ditto.pipelines.ltx2.params import LTX2Params


@dataclass(frozen=True)
class LatentShape:
    frames: int  # latent frames
    height: int
    width: int
    channels: int
    audio_frames: int
    audio_channels: int
    audio_mel_bins: int  # latent mel bins

    @property
    def video_tokens(self) -> int:
        return self.frames * self.height * self.width

    @property
    def audio_token_channels(self) -> int:
        return self.audio_channels * self.audio_mel_bins


def latent_shape(components: LTX2Components, params: LTX2Params) -> LatentShape:
    """The latent grid of a request's video and audio."""
    vae, audio_vae = components.vae, components.audio_vae
    # Audio latents per second: sample_rate / hop / temporal compression (25 for every LTX-2 checkpoint).
    per_second = (
        audio_vae.config.sample_rate / audio_vae.config.mel_hop_length / audio_vae.temporal_compression_ratio
    )
    return LatentShape(
        frames=(params.num_frames - 1) // vae.temporal_compression_ratio + 1,
        height=params.height // vae.spatial_compression_ratio,
        width=params.width // vae.spatial_compression_ratio,
        channels=vae.config.latent_channels,
        audio_frames=round(params.num_frames / params.frame_rate * per_second),
        audio_channels=audio_vae.config.latent_channels,
        audio_mel_bins=audio_vae.config.mel_bins // audio_vae.mel_compression_ratio,
    )


def pack_video(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, F, H, W] -> [B, F*H*W, C] (patch size 1, as every LTX-2 checkpoint)."""
    return latents.flatten(2).transpose(1, 2)


def unpack_video(tokens: torch.Tensor, shape: LatentShape) -> torch.Tensor:
    return tokens.transpose(1, 2).unflatten(2, (shape.frames, shape.height, shape.width))


def pack_audio(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, L, M] -> [B, L, C*M]: one token per latent audio frame, all mel bins in it."""
    return latents.transpose(1, 2).flatten(2, 3)


def unpack_audio(tokens: torch.Tensor, shape: LatentShape) -> torch.Tensor:
    return tokens.unflatten(2, (-1, shape.audio_mel_bins)).transpose(1, 2)


def channel_view(stat: torch.Tensor, like: torch.Tensor, ndim: int) -> torch.Tensor:
    return stat.to(like.device, like.dtype).view(1, -1, *([1] * (ndim - 2)))


def normalize_video(latents: torch.Tensor, vae: torch.nn.Module) -> torch.Tensor:
    mean, std = channel_view(vae.latents_mean, latents, 5), channel_view(vae.latents_std, latents, 5)
    return (latents - mean) * vae.config.scaling_factor / std


def denormalize_video(latents: torch.Tensor, vae: torch.nn.Module) -> torch.Tensor:
    mean, std = channel_view(vae.latents_mean, latents, 5), channel_view(vae.latents_std, latents, 5)
    return latents * std / vae.config.scaling_factor + mean


def normalize_audio_tokens(tokens: torch.Tensor, audio_vae: torch.nn.Module) -> torch.Tensor:
    """Audio statistics are per token channel (C*M), applied on the packed layout."""
    return (tokens - audio_vae.latents_mean.to(tokens)) / audio_vae.latents_std.to(tokens)


def denormalize_audio_tokens(tokens: torch.Tensor, audio_vae: torch.nn.Module) -> torch.Tensor:
    return tokens * audio_vae.latents_std.to(tokens) + audio_vae.latents_mean.to(tokens)


def official_noise(
    batch: int,
    shape: LatentShape,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
    extra_video_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ltx_core GaussianNoiser: randn in the model dtype on the packed [B, tokens, C] shapes, video then
    audio, from one generator; kept in float32 afterwards for the Euler updates. Appended keyframe tokens
    (extra_video_tokens) are part of the official video state, so they are part of its one draw."""
    video = torch.randn(
        (batch, shape.video_tokens + extra_video_tokens, shape.channels),
        generator=generator,
        dtype=dtype,
        device=device,
    )
    audio = torch.randn(
        (batch, shape.audio_frames, shape.audio_token_channels),
        generator=generator,
        dtype=dtype,
        device=device,
    )
    return video.float(), audio.float()


def given_video_latents(
    latents: torch.Tensor, shape: LatentShape, batch: int, vae: torch.nn.Module
) -> torch.Tensor:
    """diffusers' meaning: [B, C, F, H, W] is raw VAE space (normalised here); packed [B, T, C] is used as is."""
    if latents.ndim == 5:
        latents = pack_video(normalize_video(latents.float(), vae))
    expected = (batch, shape.video_tokens, shape.channels)
    if tuple(latents.shape) != expected:
        raise InvalidParameter(
            "latents", tuple(latents.shape), f"does not fit the request; expected {expected}"
        )
    return latents.float()


def given_audio_latents(
    latents: torch.Tensor, shape: LatentShape, batch: int, audio_vae: torch.nn.Module
) -> torch.Tensor:
    """diffusers' meaning: audio latents, [B, C, L, M] or packed, are raw VAE space and get normalised."""
    if latents.ndim == 4:
        latents = pack_audio(latents)
    expected = (batch, shape.audio_frames, shape.audio_token_channels)
    if tuple(latents.shape) != expected:
        raise InvalidParameter(
            "audio_latents", tuple(latents.shape), f"does not fit the request; expected {expected}"
        )
    return normalize_audio_tokens(latents.float(), audio_vae)
