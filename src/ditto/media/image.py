"""PNG writing and image reading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ditto.errors import InvalidParameter
from ditto.media.pixels import to_uint8


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(to_uint8(image)).save(tmp, format="PNG")
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
