"""Image writing (PNG, JPEG, WebP by the file suffix) and image reading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ditto.errors import InvalidParameter
from ditto.media.metadata import image_save_options
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


def write_image(path: Path, image: np.ndarray, metadata: dict[str, str] | None = None) -> Path:
    """Write one [H, W, 3] float image in the format its suffix names (written to `.part`, then renamed),
    with `metadata` embedded (media/metadata.py)."""
    image_type, options = image_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    options = {**options, **image_save_options(image_type, metadata or {})}
    Image.fromarray(to_uint8(image)).save(tmp, format=image_type, **options)
    tmp.replace(path)
    return path


def load_image(source: Any, field: str = "image") -> Image.Image:
    """Open a path or pass a PIL image through (as RGB); anything else, or an unreadable file, is a clear
    error naming the field. Every image input of every family comes through here."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidParameter(
            field, type(source).__name__, "is not an image", "give a PIL image or a file path"
        )
    try:
        with Image.open(source) as image:
            return image.convert("RGB")
    except (FileNotFoundError, IsADirectoryError):
        raise InvalidParameter(
            field, str(source), "does not exist", "give the path of a PNG or JPEG file"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidParameter(
            field,
            str(source),
            f"is not a readable image ({exc.__class__.__name__})",
            "give a PNG or JPEG file",
        ) from None
