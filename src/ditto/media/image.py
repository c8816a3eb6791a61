"""Image writing (PNG, JPEG, WebP by the file suffix) and image reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ditto.errors import InvalidParameter
from ditto.media.pixels import to_uint8

# suffix -> (PIL format, save options). JPEG at quality 95 (PIL's default 4:2:0 chroma subsampling); WebP
# lossless, so a .webp holds the same pixels as the .png of the same request.
IMAGE_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"lossless": True}),
}


def image_format(path: Path) -> tuple[str, dict[str, Any]]:
    """The format a still image is written in, from its suffix; any other suffix is a clear error."""
    found = IMAGE_FORMATS.get(path.suffix.lower())
    if found is None:
        raise InvalidParameter(
            "output", str(path), "is not an image path", f"use one of {', '.join(IMAGE_FORMATS)}"
        )
    return found


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write one [H, W, 3] float image in the format its suffix names (written to `.part`, then renamed)."""
    image_type, options = image_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(to_uint8(image)).save(tmp, format=image_type, **options)
    tmp.replace(path)
    return path


def load_image(source, field: str = "image") -> Image.Image:
    """Open a path or pass a PIL image through; an unreadable file is a clear error naming the field."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    try:
        with Image.open(source) as image:
            return image.convert("RGB")
    except (FileNotFoundError, IsADirectoryError):
        raise InvalidParameter(
            field, str(source), "does not exist", "give the path of a PNG or JPEG file"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidParameter(
            field, str(source), f"is not a readable image ({exc.__class__.__name__})"
        ) from None
