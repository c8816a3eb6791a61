"""Audio input: decoding a file's sound with PyAV (WAV, MP3, AAC, the sound of an MP4) and resampling it.

Decoding follows ltx_pipelines.utils.media_io.decode_audio_from_file (1.0.0): seek to the start, keep the
decoded frames that overlap [start, start + duration], convert each to float32 in [-1, 1] as channels x
samples, then cut the samples before the start and after the duration. Resampling is the band-limited
sinc interpolation with a Hann window that torchaudio.functional.resample uses by default (the official
AudioProcessor calls it), written out here so ditto needs no torchaudio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ditto.errors import InvalidParameter
from ditto.media.video import open_stream

# Full scale of the integer sample formats PyAV decodes to (as the official decoder divides by).
_INT_FULL_SCALE = {"u8": 128.0, "u8p": 128.0, "s16": 32768.0, "s16p": 32768.0, "s32": 2**31, "s32p": 2**31}
# torchaudio.functional.resample's defaults (sinc_interp_hann).
LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


@dataclass(frozen=True)
class DecodedAudio:
    waveform: np.ndarray  # [channels, samples] float32 in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.waveform.shape[1] / self.sample_rate


def _frame_to_float(frame) -> np.ndarray:
    """One decoded frame -> float32 [channels, samples] in [-1, 1]."""
    array = frame.to_ndarray().astype(np.float32)
    scale = _INT_FULL_SCALE.get(frame.format.name)
    if scale is not None:
        array = array / scale
    if not frame.format.is_planar:
        # Interleaved formats come as [1, samples * channels].
        array = array.reshape(-1, len(frame.layout.channels)).T
    return array


def _stream_end(stream) -> float:
    """Where the stream says it ends (the official reader stops after the frame that starts past it)."""
    if stream.duration is None:
        return math.inf
    return float(stream.duration * stream.time_base)


def decode_audio(
    path: str | Path, field: str, start_time: float = 0.0, max_duration: float | None = None
) -> DecodedAudio:
    """The first audio stream of `path` from `start_time` for at most `max_duration` seconds."""
    hint = "give a WAV, MP3, AAC or MP4 file with sound"
    with open_stream(path, field, "audio", hint) as (container, stream):
        rate = stream.rate
        end_time = start_time + max_duration if max_duration else _stream_end(stream)
        container.seek(int(start_time / stream.time_base), stream=stream)
        samples, first_time = [], None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            frame_time = float(frame.pts * stream.time_base)
            if frame_time + frame.samples / frame.sample_rate < start_time:
                continue
            if frame_time > end_time:
                break
            first_time = frame_time if first_time is None else first_time
            samples.append(_frame_to_float(frame))
    if not samples:
        raise InvalidParameter(field, str(path), f"has no sound after {start_time:g} s", "start earlier")
    waveform = np.concatenate(samples, axis=-1)
    # Codec frames need not align with the window: cut what lies before the start and past the duration.
    skip = round((start_time - first_time) * rate)
    if skip > 0:
        waveform = waveform[:, skip:]
    if max_duration is not None:
        waveform = waveform[:, : round(max_duration * rate)]
    return DecodedAudio(np.ascontiguousarray(waveform), rate)


def _sinc_kernels(orig: int, new: int, dtype: torch.dtype, device) -> tuple[torch.Tensor, int]:
    """The [new, 1, taps] polyphase kernels of a Hann-windowed sinc low-pass at ROLLOFF of the lower
    Nyquist frequency, and the padding each side needs; in the waveform's dtype, in torchaudio's order of
    operations (its rounding is part of the result)."""
    cutoff = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None, None] / new + taps
    t = (t * cutoff).clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.tensor(1.0, dtype=t.dtype, device=device), t.sin() / t)
    return sinc * (window * (cutoff / orig)), width


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """[..., samples] at `orig_rate` -> [..., ceil(samples * new / orig)] at `new_rate`."""
    if orig_rate == new_rate:
        return waveform
    divisor = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // divisor, int(new_rate) // divisor
    kernels, width = _sinc_kernels(orig, new, waveform.dtype, waveform.device)
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    padded = torch.nn.functional.pad(flat, (width, width + orig))
    out = torch.nn.functional.conv1d(padded[:, None], kernels, stride=orig)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    length = math.ceil(new * shape[-1] / orig)
    return out[..., :length].reshape(*shape[:-1], -1)
