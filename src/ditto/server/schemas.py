"""The request models (pydantic) of the image and video routes, generated from the field table.

Each route's model is OpenAI's fields plus the extra fields the served family takes (ditto/fields.py), so
`/docs`, `/redoc` and `/openapi.json` describe every field, and the same model checks JSON bodies
(strictly: a number must be a JSON number) and multipart forms (whose values are text, parsed). Types,
finite numbers, the seed's uint64 range and closed sets are checked here; ranges that depend on the
model (multiples, 8k+1 frames) are the family's own checks, and limits are limits.py's.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from ditto.fields import FAMILIES, TABLE, RequestField, family_fields
from ditto.server.errors import APIError

UINT64_MAX = (1 << 64) - 1
IGNORED = "accepted for compatibility with OpenAI's API; ignored"


def parse_size(value: str | None) -> tuple[int, int] | None:
    """'WxH' -> (width, height); 'auto' or absent -> None (the family default)."""
    if value in (None, "", "auto"):
        return None
    width, sep, height = value.strip().lower().partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit()) or len(value) > 32:
        raise ValueError(f"size={value!r} is not WIDTHxHEIGHT; e.g. '512x512'")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"size={value!r} must be positive")
    return int(width), int(height)


class RequestBase(BaseModel):
    """What every generation route takes from OpenAI's API."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="text prompt")
    model: str | None = Field(None, description="the served model's name (optional: there is one)")
    size: str | None = Field(
        None,
        description="WIDTHxHEIGHT, e.g. 1024x1024; 'auto' or absent: the family's default. A size the "
        "family cannot make is snapped to the nearest it can (the response says which), unless the server "
        "runs with --strict-size",
        examples=["1024x1024"],
    )
    user: str | None = Field(None, description=IGNORED)
    preview_every: int | None = Field(
        None,
        ge=0,
        description="ditto's: a cheap preview of the latents every N steps while the job runs (GET "
        "/v1/jobs/{id}/preview); 0: none; absent: the server's --preview-every",
    )

    @field_validator("size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        parse_size(value)
        return value


class ImageRequest(RequestBase):
    n: int | None = Field(None, ge=1, description="images to make (server limit: max_images)")
    response_format: Literal["b64_json", "url"] | None = Field(None, description="default b64_json")
    output_format: Literal["png"] | None = Field(None, description="only png")
    stream: Literal[False] | None = Field(None, description="streaming is not supported; leave it out")
    quality: str | None = Field(None, description=IGNORED)
    style: str | None = Field(None, description=IGNORED)
    moderation: str | None = Field(None, description=IGNORED)
    background: str | None = Field(None, description=IGNORED)
    output_compression: int | None = Field(None, description=IGNORED)
    partial_images: int | None = Field(None, description=IGNORED)
    input_fidelity: str | None = Field(None, description=IGNORED)


class VideoRequest(RequestBase):
    seconds: str | float | None = Field(
        None,
        description="clip length in seconds (OpenAI sends text, e.g. '4'); turned into frames at the "
        "frame rate (LTX-2: the nearest 8k+1); num_frames wins when both are given",
    )

    input_reference: Any = Field(
        None, description="an image for the first frame: a file in a multipart body (not a JSON value)"
    )

    @field_validator("input_reference")
    @classmethod
    def _reference(cls, value: Any) -> None:
        if value is not None:
            raise ValueError("input_reference must be an uploaded image file (multipart), not a JSON value")
        return None

    @field_validator("seconds")
    @classmethod
    def _seconds(cls, value: str | float | None) -> str | float | None:
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"seconds={value!r} must be a positive number of seconds, e.g. '4'")
        return value


def _annotation(entry: RequestField) -> Any:
    if entry.choices:
        return Literal[entry.choices]
    if entry.name == "seed":
        return Annotated[int, Field(ge=0, le=UINT64_MAX)]
    if entry.kind is float:
        return Annotated[float, Field(allow_inf_nan=False)]
    return entry.kind


def extra_entries(family: str) -> list[RequestField]:
    """The extra body fields of a family (of every family, for one the table does not know)."""
    entries = family_fields(family) if family in FAMILIES else list(TABLE)
    return [entry for entry in entries if entry.api == "extra"]


def _extras(family: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for entry in extra_entries(family):
        help = f"{entry.help} (engine keyword {entry.name}; families: {', '.join(entry.families)})"
        for name in entry.server_names:
            fields[name] = (_annotation(entry) | None, Field(None, description=help))
    return fields


class RequestModels:
    """The models of one served family: images (JSON and form), edits (form) and videos (JSON or form)."""

    def __init__(self, family: str) -> None:
        self.family = family
        extras = _extras(family)
        self.image = create_model("ImageGenerationRequest", __base__=ImageRequest, **extras)
        self.edit = create_model("ImageEditRequest", __base__=ImageRequest, **extras)
        self.video = create_model("VideoCreateRequest", __base__=VideoRequest, **extras)
        self.extra_names = {name: entry for entry in extra_entries(family) for name in entry.server_names}

    def parse(self, model: type[BaseModel], fields: dict[str, Any] | bytes) -> BaseModel:
        """A JSON body (bytes, strict types) or form fields (text, parsed) -> the model, or the 400."""
        try:
            if isinstance(fields, bytes):
                return model.model_validate_json(fields, strict=True)
            return model.model_validate(fields)
        except ValidationError as exc:
            raise self.error(exc, model) from None

    def error(self, exc: ValidationError, model: type[BaseModel]) -> APIError:
        first = exc.errors(include_url=False)[0]
        param = str(first["loc"][0]) if first["loc"] else None
        kind, message = first["type"], first["msg"].removeprefix("Value error, ")
        if kind == "json_invalid":
            return APIError(400, f"the request body is not valid JSON ({message})", code="invalid_json")
        if kind == "model_type":
            return APIError(400, "the request body must be a JSON object", code="invalid_json")
        if kind == "missing":
            return APIError(400, f"{param} is required", param=param, code="missing_required_parameter")
        if kind == "extra_forbidden":
            known = [name for name, spec in model.model_fields.items() if spec.description != IGNORED]
            message = f"unknown parameter {param!r}; the {self.family} model takes {', '.join(known)}"
            return APIError(400, message, param=param, code="unknown_parameter")
        if kind != "value_error":
            message = f"{param}={_shown(first.get('input'))} is invalid: {message}"
        code = "invalid_type" if kind.endswith("_type") or kind.endswith("_parsing") else "invalid_value"
        return APIError(400, message, param=param, code=code)


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Where the server's meaning differs from the CLI's help line (fields.py).
SERVER_HELP = {
    "prompt": "text prompt (required)",
    "image": "reference images: `image` files on /v1/images/edits; `input_reference` files on /v1/videos (one "
    "for frame 0, or several with `input_reference_frames`)",
    "num_images_per_prompt": "images to make (OpenAI's `n`)",
    "image_frames": "keyframes: the frame of each uploaded `input_reference` image, in order, e.g. `0,120`; "
    "one frame index in 0..num_frames-1 per image",
}
FAMILY_NAMES = {"ltx2": "LTX-2", "flux2-klein": "FLUX.2 Klein", "qwen-image": "Qwen-Image",
                "qwen-image-edit": "Qwen-Image-Edit"}  # fmt: skip


def family_table() -> str:
    """The README's table (markdown) of which family takes which request field over HTTP."""
    header = ["field", *FAMILY_NAMES.values(), "what it is"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in TABLE:
        if not entry.api:
            continue
        names = " / ".join(f"`{name}`" for name in entry.server_names)
        marks = ["✓" if family in entry.families else "" for family in FAMILY_NAMES]
        help = SERVER_HELP.get(entry.name, entry.help)
        lines.append("| " + " | ".join([names, *marks, help]) + " |")
    return "\n".join(lines)
