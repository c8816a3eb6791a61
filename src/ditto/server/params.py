"""Reading a request body: its media type, JSON (as bytes, for the strict model) or a multipart form
(fields as text, files by field), then the validated model -> the engine's keyword arguments.

OpenAI's fields keep their OpenAI names (size, n, seconds); ditto's family parameters come as extra body
fields under diffusers' names (plus `fps` for `frame_rate`), as the request table says (ditto/fields.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from ditto.fields import RequestField
from ditto.server.errors import APIError
from ditto.server.schemas import parse_size

JSON = "application/json"
MULTIPART = "multipart/form-data"
MAX_FORM_FIELDS = 128
MAX_FIELD_BYTES = 1 << 20  # one text field of a form (a prompt is bounded far below by the limits)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_media_type(request: Request, allowed: tuple[str, ...]) -> str:
    """JSON routes take only application/json (a browser cannot send it cross-site without asking first),
    upload routes multipart/form-data too."""
    kind = media_type(request)
    if kind not in allowed:
        shown = kind or "none"
        raise APIError(
            415,
            f"content-type {shown!r} is not accepted here; send {' or '.join(allowed)}",
            code="unsupported_media_type",
        )
    return kind


async def read_body(
    request: Request, allowed: tuple[str, ...], max_files: int
) -> tuple[bytes | dict[str, Any], dict[str, list[UploadFile]]]:
    """(the JSON bytes or the form's text fields, the uploaded files by field)."""
    if require_media_type(request, allowed) == JSON:
        return await request.body(), {}
    form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES)
    fields: dict[str, Any] = {}
    files: dict[str, list[UploadFile]] = {}
    for key, value in form.multi_items():
        name = key[:-2] if key.endswith("[]") else key  # the openai client sends lists as `image[]`
        if isinstance(value, UploadFile):
            files.setdefault(name, []).append(value)
        elif value != "":  # a form cannot say null: an empty field is an absent one
            fields[name] = value
    return fields, files


def engine_kwargs(parsed: BaseModel, extras: dict[str, RequestField]) -> dict[str, Any]:
    """The extra fields given -> engine keywords; `size` -> width and height."""
    kwargs: dict[str, Any] = {}
    for name, entry in extras.items():
        value = getattr(parsed, name, None)
        if value is None:
            continue
        if entry.name in kwargs and kwargs[entry.name] != value:
            raise APIError(
                400,
                f"{name}={value!r} contradicts another spelling of {entry.name} ({kwargs[entry.name]!r})",
                param=name,
                code="invalid_value",
            )
        kwargs[entry.name] = value
    size = parse_size(parsed.size)
    if size is not None:
        kwargs["width"], kwargs["height"] = size
    return kwargs


def frames_for_seconds(seconds: float, frame_rate: float, family: str) -> int:
    """Clip length -> frame count: seconds * fps frames plus the first; LTX needs 8k+1 frames."""
    frames = round(seconds * frame_rate) + 1
    if family.startswith("ltx"):
        frames = 8 * max(1, round((frames - 1) / 8)) + 1
    return frames
