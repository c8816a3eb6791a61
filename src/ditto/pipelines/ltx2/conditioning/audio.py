"""Input audio as LTX-2 latents, as ltx-core 1.0.0 encodes it (model/audio_vae: AudioProcessor, encode_audio).

waveform (any rate, mono or stereo) -> resampled to the audio VAE's rate (media/audio.py, torchaudio's
sinc-Hann rule) -> log-mel spectrogram (magnitude STFT, Hann window of n_fft, centred with reflect
padding, Slaney mel scale and norm, log of max(mel, 1e-5)) -> the audio VAE encoder's posterior mean,
normalised with the per-channel statistics on the packed tokens. Mono input is duplicated to the two
channels the encoder takes (the official encoder would refuse it).

`InputAudio` keeps the tokens it is given (denoise mask 0: audio-to-video's audio, frozen in both stages).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ditto.errors import InvalidParameter
from ditto.media.audio import DecodedAudio, resample
from ditto.pipelines.ltx2.conditioning.item import ConditioningTools, LatentConditioning
from ditto.pipelines.ltx2.latents import normalize_audio_tokens, pack_audio

# ltx-core AudioEncoder n_fft default; the published configs' stft filter_length (diffusers keeps none).
N_FFT = 1024
LOG_FLOOR = 1e-5


# Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above; constants as torchaudio
# spells them (1000 / (200 / 3) is not exactly 15 in floating point, and the filters see that).
_HZ_PER_MEL = 200.0 / 3
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _HZ_PER_MEL
_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(freq: float) -> float:
    if freq < _LOG_START_HZ:
        return freq / _HZ_PER_MEL
    return _LOG_START_MEL + math.log(freq / _LOG_START_HZ) / _LOG_STEP


def _mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    log_part = _LOG_START_HZ * torch.exp(_LOG_STEP * (mels - _LOG_START_MEL))
    return torch.where(mels >= _LOG_START_MEL, log_part, _HZ_PER_MEL * mels)


def mel_filters(n_freqs: int, sample_rate: int, n_mels: int) -> torch.Tensor:
    """[n_freqs, n_mels] triangular Slaney-normalised filters from 0 Hz to Nyquist, float32."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    mel_points = torch.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2)
    hz_points = _mel_to_hz(mel_points)
    widths = hz_points[1:] - hz_points[:-1]
    slopes = hz_points.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = torch.clamp(torch.minimum(down, up), min=0.0)
    return filters * (2.0 / (hz_points[2 : n_mels + 2] - hz_points[:n_mels])).unsqueeze(0)


def log_mel(waveform: torch.Tensor, sample_rate: int, hop_length: int, n_mels: int) -> torch.Tensor:
    """[B, C, samples] -> [B, C, frames, n_mels] log-magnitude mel spectrogram."""
    batch, channels, samples = waveform.shape
    window = torch.hann_window(N_FFT, device=waveform.device, dtype=waveform.dtype)
    spectrum = torch.stft(
        waveform.reshape(-1, samples), N_FFT, hop_length, N_FFT, window,
        center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
    ).abs()  # fmt: skip
    spectrum = spectrum.reshape(batch, channels, *spectrum.shape[-2:])
    filters = mel_filters(N_FFT // 2 + 1, sample_rate, n_mels).to(waveform.device, waveform.dtype)
    mel = torch.matmul(spectrum.transpose(-1, -2), filters)  # [B, C, frames, n_mels]
    return torch.log(torch.clamp(mel, min=LOG_FLOOR))


def encode_audio(audio_vae: torch.nn.Module, audio: DecodedAudio) -> torch.Tensor:
    """A decoded waveform -> normalised packed audio tokens [1, L, C*M] (every latent frame it yields)."""
    config = audio_vae.config
    # Resampling and the mel stay in float32 whatever the VAE's dtype, as ltx-core's float32 AudioProcessor
    # does (and FFTs take no bfloat16); only the mel is cast for the encoder.
    waveform = torch.from_numpy(audio.waveform).to(audio_vae.device, torch.float32)
    if waveform.shape[0] == 1:
        waveform = waveform.expand(2, -1)
    waveform = resample(waveform[None, :2], audio.sample_rate, config.sample_rate)
    mel = log_mel(waveform, config.sample_rate, config.mel_hop_length, config.mel_bins)
    latents = audio_vae.encode(mel.to(audio_vae.dtype)).latent_dist.mode()
    return normalize_audio_tokens(pack_audio(latents.float()), audio_vae)


def fit_audio(tokens: torch.Tensor, frames: int, field: str, seconds: float) -> torch.Tensor:
    """The first `frames` latent frames; shorter audio than the video is an error naming `field`."""
    if tokens.shape[1] < frames:
        raise InvalidParameter(
            field, f"{seconds:.2f} s of audio", f"is shorter than the video ({frames} audio latent frames needed)",
            "give audio at least as long as num_frames / frame_rate, or fewer frames",
        )  # fmt: skip
    return tokens[:, :frames]


@dataclass(frozen=True)
class InputAudio:
    """Given audio tokens [1, L, C*M], kept as they are while the video is generated (mask 0)."""

    tokens: torch.Tensor

    def apply_to(self, state: LatentConditioning, tools: ConditioningTools) -> LatentConditioning:
        tokens = self.tokens.to(state.clean.device).expand(tools.batch, -1, -1)
        return state.keep(tokens, torch.zeros_like(state.mask))


def frozen_audio(state: LatentConditioning) -> LatentConditioning:
    """The same state with every audio token kept (a2vid's denoise_video_only)."""
    return dataclasses.replace(state, mask=torch.zeros_like(state.mask))
