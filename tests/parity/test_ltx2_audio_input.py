"""ditto's audio input (media/audio.py, pipelines/ltx2/conditioning/audio.py) against the official code it
follows: ltx_pipelines' decode_audio_from_file (WAV, MP3, AAC in an M4A, an MP4's sound; with a start and
a duration), torchaudio's resample and MelSpectrogram as ltx-core's AudioProcessor calls them."""

from __future__ import annotations

import numpy as np
import official_shims
import pytest
import torch

from ditto.media.audio import decode_audio, resample
from ditto.pipelines.ltx2.conditioning.audio import log_mel

from helpers.metrics import max_abs


def write_sound(path, codec: str, rate: int, channels: int = 2, seconds: float = 0.7):
    import av

    time = np.arange(int(rate * seconds)) / rate
    tones = [0.4 * np.sin(2 * np.pi * f * time + i) for i, f in enumerate((330, 523)[:channels])]
    samples = np.stack(tones).astype(np.float32)
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        fmt = stream.codec_context.format.name
        for start in range(0, samples.shape[1], 1152):
            part = samples[:, start : start + 1152]
            if fmt in ("s16", "s16p"):
                part = (part * 32767).astype(np.int16)
            elif fmt in ("s32", "s32p"):
                part = (part * (2**31 - 1)).astype(np.int32)
            if not stream.codec_context.format.is_planar:
                part = part.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=fmt, layout=layout)
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    ("name", "codec", "rate", "start", "duration"),
    [("a.wav", "pcm_s16le", 16000, 0.0, None), ("a.mp3", "libmp3lame", 44100, 0.0, 0.4),
     ("a.m4a", "aac", 48000, 0.13, 0.3), ("a.mp3", "libmp3lame", 22050, 0.2, None)],
)  # fmt: skip
def test_decoding_as_the_official_reader(tmp_path, name, codec, rate, start, duration) -> None:
    official_shims.install()
    from ltx_pipelines.utils.media_io import decode_audio_from_file

    path = write_sound(tmp_path / name, codec, rate)
    ref = decode_audio_from_file(str(path), torch.device("cpu"), start, duration)
    ours = decode_audio(path, "audio", start, duration)
    assert ours.sample_rate == ref.sampling_rate
    assert max_abs(ours.waveform, ref.waveform[0]) == 0.0


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (48000, 16000), (22050, 16000), (8000, 16000)])
def test_resampling_as_torchaudio(orig: int, new: int) -> None:
    official_shims.install()
    official_shims.require_torchaudio()
    import torchaudio

    waveform = torch.randn(1, 2, 9001, generator=torch.Generator().manual_seed(orig))
    expected = torchaudio.functional.resample(waveform, orig, new)
    assert max_abs(resample(waveform, orig, new), expected) == 0.0


@pytest.mark.parametrize("mel_bins", [16, 64, 128])
def test_log_mel_as_the_official_audio_processor(mel_bins: int) -> None:
    official_shims.install()
    official_shims.require_torchaudio()
    from ltx_core.model.audio_vae.ops import AudioProcessor
    from ltx_core.types import Audio

    waveform = 0.3 * torch.randn(1, 2, 12345, generator=torch.Generator().manual_seed(mel_bins))
    processor = AudioProcessor(target_sample_rate=16000, mel_bins=mel_bins, mel_hop_length=160, n_fft=1024)
    expected = processor.waveform_to_mel(Audio(waveform=waveform, sampling_rate=16000))
    assert max_abs(log_mel(waveform, 16000, 160, mel_bins), expected) == 0.0


def test_bad_audio_files_are_named_errors(tmp_path) -> None:
    from ditto.errors import InvalidParameter

    (tmp_path / "x.wav").write_bytes(b"not audio")
    with pytest.raises(InvalidParameter, match="audio="):
        decode_audio(tmp_path / "x.wav", "audio")
    from ditto.media.video import write_mp4

    silent = write_mp4(tmp_path / "v.mp4", np.zeros((9, 64, 64, 3), np.uint8), 24.0)
    with pytest.raises(InvalidParameter, match="has no audio stream"):
        decode_audio(silent, "audio")
