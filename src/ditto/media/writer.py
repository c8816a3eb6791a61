"""Result.save: choose the container from the file suffix."""

from __future__ import annotations

from pathlib import Path

from ditto.errors import InvalidParameter
from ditto.media.image import image_format, write_image
from ditto.media.video import write_mp4


def numbered(path: Path, index: int, count: int) -> Path:
    """`cat.png` stays as is for one output; several become cat-0.png, cat-1.png, ..."""
    return path if count == 1 else path.with_name(f"{path.stem}-{index}{path.suffix}")


def check_output_path(path: Path, output_kind: str) -> None:
    """The suffix suits what the model makes ("video": .mp4; "image": .png, .jpg, .jpeg, .webp). Callers
    check it before generating, so a wrong name costs no work."""
    if output_kind == "image":
        image_format(path)
    elif path.suffix.lower() != ".mp4":
        raise InvalidParameter("output", str(path), "is not an .mp4 path", "video models write MP4 files")


def output_count(result) -> int:
    """How many files `save_result` writes for `result` (0 for latents)."""
    if result.frames is not None:
        return len(result.batch_frames or [result.frames])
    return 0 if result.images is None else len(result.images)


def save_result(result, path: Path) -> list[Path]:
    """Each output to its (numbered) path, each with its own request metadata (Result.file_metadata)."""
    count = output_count(result)
    if result.frames is not None:
        check_output_path(path, "video")
        videos = result.batch_frames or [result.frames]
        audios = result.batch_audio or [result.audio] * len(videos)
        return [
            write_mp4(
                numbered(path, i, count), frames, result.frame_rate, audio, result.sample_rate,
                metadata=result.file_metadata(i, count),
            )
            for i, (frames, audio) in enumerate(zip(videos, audios))
        ]  # fmt: skip
    if result.images is not None:
        check_output_path(path, "image")
        return [
            write_image(numbered(path, i, count), image, result.file_metadata(i, count))
            for i, image in enumerate(result.images)
        ]
    raise InvalidParameter("output_type", "latent", "has no frames or images to save", 'use output_type="np"')
