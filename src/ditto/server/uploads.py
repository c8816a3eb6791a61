"""Uploaded files: bounded in bytes, and for images in decoded pixels read from the header before any pixel
is decoded (a 20000x20000 PNG of a few KB is refused without allocating 1.2 GB).

Each form field that takes files names a kind (`UPLOAD_FIELDS`), and each kind has a limit (limits.py)
and a checker here that reads the file's header. A new kind (video, audio) is one entry in each.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ditto.server.errors import APIError
from ditto.server.limits import UploadLimit, over_limit

# Form field -> (the kind of file it takes, the engine keyword whose list of paths it joins).
UPLOAD_FIELDS = {"image": ("image", "image"), "input_reference": ("image", "image")}


def open_image(data: bytes, limit: UploadLimit, field: str, name: str) -> Image.Image:
    """The image, opened lazily (header only), once its pixel count is within the limit."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # PIL's own bound, far above ours, refused from the header too
        raise over_limit(field, "<a larger image>", "max_upload_pixels", limit.max_pixels or 0) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise unreadable(field, name, exc) from None
    width, height = image.size
    if limit.max_pixels is not None and width * height > limit.max_pixels:
        image.close()
        raise over_limit(field, f"<{width}x{height} image>", "max_upload_pixels", limit.max_pixels)
    return image


def store_image_png(data: bytes, limit: UploadLimit, field: str, name: str, dest: Path) -> Path:
    """Check, decode and store an uploaded image as PNG (the engine reads paths)."""
    with open_image(data, limit, field, name) as image:
        try:
            image.load()
            rgb = image.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise unreadable(field, name, exc) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    rgb.save(dest, format="PNG")
    return dest


def unreadable(field: str, name: str, exc: Exception) -> APIError:
    return APIError(
        400,
        f"{field}={name!r} is not a readable image ({exc.__class__.__name__}); upload a PNG or JPEG",
        param=field,
        code="invalid_image",
    )


# Kind -> (check, decode and store it under dest); the stored file's path is what the engine is given.
STORERS: dict[str, Callable[[bytes, UploadLimit, str, str, Path], Path]] = {"image": store_image_png}
SUFFIXES = {"image": ".png"}


def upload_limit(limits: Any, field: str) -> UploadLimit:
    return limits.uploads[UPLOAD_FIELDS[field][0]]


async def save_upload(upload: UploadFile, field: str, limit: UploadLimit, dest_stem: Path) -> Path:
    """Refuse a file over the kind's byte limit before reading it, then check, decode and store it."""
    kind = UPLOAD_FIELDS[field][0]
    name = upload.filename or field
    size = upload.size
    if size is None or size <= limit.max_bytes:
        data = await upload.read(limit.max_bytes + 1)
        size = len(data)
    if size > limit.max_bytes:
        raise over_limit(field, f"<{size} bytes>", "max_upload_bytes", limit.max_bytes)
    dest = dest_stem.with_suffix(SUFFIXES[kind])
    return await run_in_threadpool(STORERS[kind], data, limit, field, name, dest)
