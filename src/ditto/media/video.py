"""MP4 writing (H.264 video + AAC audio) and reading through PyAV.

PyAV is imported where an MP4 is written or read, not at import: generating (and the GPU benchmarks, on
machines without PyAV) needs none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ditto.media.metadata import with_software
from ditto.media.pixels import to_uint8

AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


def write_mp4(
    path: Path,
    frames: np.ndarray,
    frame_rate: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write frames [F, H, W, 3] and optional audio [channels, samples] (float in [-1, 1]) to an MP4, with
    `metadata` as tags (media/metadata.py).

    The file is written to a temporary name and renamed, so a crash never leaves half an MP4 behind.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pixels = to_uint8(frames)
    # use_metadata_tags: the MP4 muxer keeps every key, not only the few iTunes names it knows.
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "use_metadata_tags"}) as container:
        container.metadata.update(with_software(metadata or {}))
        video = container.add_stream("libx264", rate=Fraction(frame_rate).limit_denominator(1001))
        video.width, video.height = pixels.shape[2], pixels.shape[1]
        video.pix_fmt = "yuv420p"
        # CRF 18 is visually lossless; "veryfast" encodes ~4x faster than x264's default "medium" at that quality.
        video.options = {"crf": str(crf), "preset": preset}
        audio_stream = _add_audio_stream(container, audio, sample_rate)
        for frame in pixels:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        if audio_stream is not None:
            _encode_audio(container, audio_stream, audio, sample_rate)
    tmp.replace(path)
    return path


def _add_audio_stream(container, audio: np.ndarray | None, sample_rate: int | None):
    if audio is None:
        return None
    channels = audio.shape[0]
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = "stereo" if channels == 2 else "mono"
    return stream


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    import av

    samples = np.clip(audio, -1.0, 1.0).astype(np.float32)
    if samples.shape[0] > 2:
        samples = samples[:2]
    chunk = 1024
    for start in range(0, samples.shape[1], chunk):
        part = np.ascontiguousarray(samples[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=stream.layout.name)
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


@dataclass
class MediaInfo:
    """What an MP4 holds, read back for tests and the server."""

    frame_count: int
    frame_rate: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    audio_channels: int
    audio_sample_rate: int
    audio_duration: float


def probe_mp4(path: str | Path) -> MediaInfo:
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        audio_streams = container.streams.audio
        codec, channels, rate, duration = None, 0, 0, 0.0
        if audio_streams:
            stream = audio_streams[0]
            codec, channels, rate = stream.codec_context.name, stream.channels, stream.rate
            container.seek(0)
            samples = sum(frame.samples for frame in container.decode(audio=0))
            duration = samples / rate
        return MediaInfo(
            frame_count=frames,
            frame_rate=float(video.average_rate),
            width=video.width,
            height=video.height,
            video_codec=video.codec_context.name,
            audio_codec=codec,
            audio_channels=channels,
            audio_sample_rate=rate,
            audio_duration=duration,
        )
