"""Result.save writes the image format its suffix names (PNG, JPEG at quality 95, lossless WebP), and
refuses any other suffix before writing anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ditto.errors import InvalidParameter
from ditto.media.pixels import to_uint8
from ditto.media.writer import check_output_path
from ditto.result import Result

# JPEG at quality 95 on these smooth pictures: measured max 4 and mean 0.62 levels of 255 off (PIL 4:2:0
# chroma); the bounds are 2.5x and 2.4x those, room for another libjpeg build's rounding.
JPEG_MAX_LEVELS = 10
JPEG_MEAN_LEVELS = 1.5


def smooth_images(count: int) -> np.ndarray:
    """Float images in [0, 1] with gradients (what JPEG is made for), different per image."""
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    images = [np.stack([x / 63, y / 47, (x + y + 20 * i) / 130], axis=-1) for i in range(count)]
    return np.clip(np.stack(images), 0.0, 1.0)


def read_back(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        return image.format, np.asarray(image.convert("RGB"))


@pytest.mark.parametrize(("suffix", "format_name"), [(".png", "PNG"), (".webp", "WEBP")])
def test_lossless_formats_hold_the_exact_pixels(tmp_path: Path, suffix: str, format_name: str) -> None:
    images = smooth_images(1)
    (path,) = Result(images=images).save(tmp_path / f"cat{suffix}")
    written_format, pixels = read_back(path)
    assert written_format == format_name
    np.testing.assert_array_equal(pixels, to_uint8(images[0]))


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_is_jpeg_with_close_pixels(tmp_path: Path, suffix: str) -> None:
    images = smooth_images(2)
    paths = Result(images=images).save(tmp_path / f"cat{suffix}")
    assert [p.name for p in paths] == [f"cat-0{suffix}", f"cat-1{suffix}"]
    for path, image in zip(paths, images):
        written_format, pixels = read_back(path)
        assert written_format == "JPEG"
        error = np.abs(pixels.astype(np.int16) - to_uint8(image).astype(np.int16))
        print(f"{path.name}: max {error.max()} mean {error.mean():.3f} levels")
        assert error.max() <= JPEG_MAX_LEVELS and error.mean() <= JPEG_MEAN_LEVELS


def test_jpeg_is_written_at_quality_95(tmp_path: Path) -> None:
    """PIL's default quality (75) gives a smaller file; the same picture saved at 95 gives the same bytes."""
    image = smooth_images(1)[0]
    (path,) = Result(images=image[None]).save(tmp_path / "cat.jpg")
    Image.fromarray(to_uint8(image)).save(tmp_path / "q95.jpg", quality=95)
    assert path.read_bytes() == (tmp_path / "q95.jpg").read_bytes()


@pytest.mark.parametrize("name", ["cat.gif", "cat.mp4", "cat"])
def test_unknown_image_suffix_is_refused_naming_the_valid_ones(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidParameter, match=r"is not an image path; use one of .png, .jpg, .jpeg, .webp"):
        Result(images=smooth_images(1)).save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_output_path_is_checked_against_the_kind() -> None:
    check_output_path(Path("fox.mp4"), "video")
    check_output_path(Path("cat.webp"), "image")
    with pytest.raises(InvalidParameter, match="is not an .mp4 path"):
        check_output_path(Path("fox.png"), "video")
    with pytest.raises(InvalidParameter, match="is not an image path"):
        check_output_path(Path("cat.mp4"), "image")
