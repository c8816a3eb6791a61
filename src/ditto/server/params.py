"""Request bodies (JSON or multipart) -> the engine's keyword arguments, with 400s that name the field.

OpenAI's fields keep their OpenAI names (size, n, seconds); ditto's family parameters come as extra body
fields under diffusers' names (plus `fps` for `frame_rate`), as the request table says (ditto/fields.py).
Multipart forms carry every value as text, so the same table coerces both.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ditto.fields import extra_fields
from ditto.server.errors import APIError

# OpenAI fields that a client may send but that mean nothing for a local diffusion model: accepted, unused.
IGNORED_FIELDS = {
    "quality", "style", "user", "moderation", "background", "output_compression", "partial_images",
    "input_fidelity", "safety_identifier", "mask", "markup", "complexity", "svg",
}  # fmt: skip

SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
TYPE_NAMES = {int: "an integer", float: "a number", str: "a string"}


def coerce(field: str, value: Any, kind: type, from_form: bool) -> Any:
    """JSON values must already have the type; form values are text and are parsed."""
    if from_form and isinstance(value, str) and kind is not str:
        try:
            return kind(value.strip())
        except ValueError:
            pass
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise APIError(400, f"{field}={value!r} is not {TYPE_NAMES[kind]}", param=field, code="invalid_type")


def parse_size(value: Any) -> tuple[int, int] | None:
    """'WxH' -> (width, height); 'auto' or absent -> None (the family default)."""
    if value in (None, "", "auto"):
        return None
    match = SIZE_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise APIError(
            400, f"size={value!r} is not WIDTHxHEIGHT; e.g. '512x512'", param="size", code="invalid_size"
        )
    width, height = int(match[1]), int(match[2])
    if width <= 0 or height <= 0:
        raise APIError(400, f"size={value!r} must be positive", param="size", code="invalid_size")
    return width, height


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_json")
    return data


async def read_body(request: Request) -> tuple[dict[str, Any], dict[str, list[UploadFile]], bool]:
    """(fields, uploaded files by field, whether the fields came as form text)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return await read_json(request), {}, False
    form = await request.form(max_files=16, max_fields=256)
    fields: dict[str, Any] = {}
    files: dict[str, list[UploadFile]] = {}
    for key, value in form.multi_items():
        name = key[:-2] if key.endswith("[]") else key  # the openai client sends lists as `image[]`
        if isinstance(value, UploadFile):
            files.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return fields, files, True


def require_prompt(fields: dict[str, Any]) -> str:
    prompt = fields.get("prompt")
    if prompt is None or prompt == "":
        raise APIError(400, "prompt is required", param="prompt", code="missing_required_parameter")
    if not isinstance(prompt, str):
        raise APIError(400, f"prompt={prompt!r} is not a string", param="prompt", code="invalid_type")
    return prompt


def extra_kwargs(fields: dict[str, Any], known: set[str], from_form: bool) -> dict[str, Any]:
    """Family parameters from the extra body fields; an unknown field is an error, as in OpenAI's API."""
    extras = extra_fields()
    kwargs: dict[str, Any] = {}
    for field, value in fields.items():
        if field in known or field in IGNORED_FIELDS:
            continue
        if field not in extras:
            raise APIError(
                400,
                f"unknown parameter {field!r}; ditto takes {sorted(extras)} besides OpenAI's fields",
                param=field,
                code="unknown_parameter",
            )
        if value is None:
            continue
        kwargs[extras[field].name] = coerce(field, value, extras[field].kind, from_form)
    return kwargs


def frames_for_seconds(seconds: float, frame_rate: float, family: str) -> int:
    """Clip length -> frame count: seconds * fps frames plus the first; LTX needs 8k+1 frames."""
    frames = round(seconds * frame_rate) + 1
    if family.startswith("ltx"):
        frames = 8 * max(1, round((frames - 1) / 8)) + 1
    return frames


async def save_image_upload(upload: UploadFile, dest: Path, field: str) -> Path:
    """Check that the upload is an image and store it as PNG (the engine reads paths)."""
    data = await upload.read()
    try:
        await run_in_threadpool(_store_png, data, dest)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        name = upload.filename or field
        raise APIError(
            400,
            f"{field}={name!r} is not a readable image ({exc.__class__.__name__}); upload a PNG or JPEG",
            param=field,
            code="invalid_image",
        ) from None
    return dest


async def save_media_upload(upload: UploadFile, dest: Path, field: str, kind: str) -> Path:
    """Store an uploaded video or sound file as it came and check that PyAV finds a `kind` ("video" or
    "audio") stream in it; the body-size limit already bounds its bytes. The engine reads the path."""
    data = await upload.read()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    if not await run_in_threadpool(_has_stream, dest, kind):
        dest.unlink(missing_ok=True)
        name = upload.filename or field
        raise APIError(
            400,
            f"{field}={name!r} is not a readable file with a {kind} stream; upload an MP4"
            + (", WAV, MP3 or AAC file" if kind == "audio" else " file"),
            param=field,
            code="invalid_file",
        )
    return dest


def _has_stream(path: Path, kind: str) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            return bool(getattr(container.streams, kind))
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def _store_png(data: bytes, dest: Path) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgb = image.convert("RGB")
    dest.parent.mkdir(parents=True, exist_ok=True)
    rgb.save(dest, format="PNG")
