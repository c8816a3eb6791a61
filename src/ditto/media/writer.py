"""Result.save: choose the container from the file suffix."""

from __future__ import annotations

from pathlib import Path

from ditto.errors import InvalidParameter
from ditto.media.image import write_png
from ditto.media.video import write_mp4


def numbered(path: Path, index: int, count: int) -> Path:
    """`cat.png` stays as is for one output; several become cat-0.png, cat-1.png, ..."""
    return path if count == 1 else path.with_name(f"{path.stem}-{index}{path.suffix}")


def save_result(result, path: Path) -> list[Path]:
    suffix = path.suffix.lower()
    if result.frames is not None:
        if suffix != ".mp4":
            raise InvalidParameter("output", str(path), "is not an .mp4 path", "video models write MP4 files")
        videos = result.batch_frames or [result.frames]
        audios = result.batch_audio or [result.audio] * len(videos)
        return [
            write_mp4(numbered(path, i, len(videos)), frames, result.frame_rate, audio, result.sample_rate)
            for i, (frames, audio) in enumerate(zip(videos, audios))
        ]
    if result.images is not None:
        if suffix not in (".png", ".jpg", ".jpeg", ".webp"):
            raise InvalidParameter("output", str(path), "is not an image path", "use .png")
        images = list(result.images)
        return [write_png(numbered(path, i, len(images)), image) for i, image in enumerate(images)]
    raise InvalidParameter("output_type", "latent", "has no frames or images to save", 'use output_type="np"')
