"""A validated request model -> a Job ready to queue: limits, uploads, the seed, the size snapped to what the
family makes, and the family's own validation. Everything here happens before the job is queued, so a bad
request costs no worker time and leaves no file behind."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ditto.errors import InvalidParameter
from ditto.server.errors import APIError
from ditto.server.limits import over_limit
from ditto.server.params import engine_kwargs, frames_for_seconds
from ditto.server.state import ServerState
from ditto.server.store import Job
from ditto.server.uploads import SINGLE_FILE_FIELDS, UPLOAD_FIELDS, save_upload, upload_limit

SEED_RANGE = 1 << 32  # a drawn seed; a client may send any uint64
SIZE_FIELDS = ("width", "height")


async def check_prompts(state: ServerState, parsed: BaseModel, kwargs: dict[str, Any]) -> None:
    count = state.count_tokens
    texts = [("prompt", parsed.prompt)]
    if isinstance(kwargs.get("negative_prompt"), str):
        texts.append(("negative_prompt", kwargs["negative_prompt"]))
    for param, text in texts:
        state.limits.check_prompt(param, text)  # bytes first: a huge prompt never reaches the tokenizer
        if count is not None:
            await run_in_threadpool(state.limits.check_prompt, param, text, count)


def video_frames(state: ServerState, parsed: BaseModel, kwargs: dict[str, Any]) -> float | None:
    """OpenAI's `seconds` -> num_frames (unless num_frames was given); the seconds, when they set it."""
    if getattr(parsed, "seconds", None) is None or "num_frames" in kwargs:
        return None
    seconds = float(parsed.seconds)
    if seconds > state.limits.max_seconds:
        raise over_limit("seconds", f"{seconds:g}", "max_seconds", state.limits.max_seconds)
    rate = kwargs.get("frame_rate") or state.default_frame_rate()
    if rate * seconds > state.limits.max_frames * 8:  # far past the limit: no need to count exactly
        raise over_limit("seconds", f"{seconds:g}", "max_frames", state.limits.max_frames)
    kwargs["num_frames"] = frames_for_seconds(seconds, rate, state.engine.family)
    return seconds


async def store_uploads(
    state: ServerState, job_id: str, files: dict[str, list[UploadFile]], kwargs: dict[str, Any]
) -> None:
    uploads = [(field, upload) for field, items in files.items() for upload in items]
    for field, _ in uploads:
        if field not in UPLOAD_FIELDS:
            raise APIError(400, f"{field!r} takes no file upload", param=field, code="unknown_parameter")
    if len(uploads) > state.limits.max_images:
        field = uploads[0][0]
        raise over_limit(field, f"<{len(uploads)} files>", "max_images", state.limits.max_images)
    folder = state.store.uploads_dir / job_id
    for index, (field, upload) in enumerate(uploads):
        limit = upload_limit(state.limits, field)
        keyword = UPLOAD_FIELDS[field][1]
        if field in SINGLE_FILE_FIELDS and keyword in kwargs:
            raise APIError(400, f"{field} takes one file", param=field, code="invalid_value")
        path = await save_upload(upload, field, limit, folder / f"{field}-{index}")
        if field in SINGLE_FILE_FIELDS:
            kwargs[keyword] = str(path)
        else:
            kwargs.setdefault(keyword, []).append(str(path))


async def validate_snapping(state: ServerState, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The family's validation; a width or height it cannot make is moved (in `kwargs`) to the nearest it
    can (OpenAI clients send 1280x720; LTX makes multiples of 32 or 64), unless the server is strict about
    sizes. Returns the validated params and what the job record adds (the size asked, when it moved)."""
    asked = {name: kwargs[name] for name in SIZE_FIELDS if name in kwargs}
    for _ in range(4):  # width, then height, then a recipe's coarser multiple
        try:
            validated = await run_in_threadpool(state.engine.validate, **kwargs)
            break
        except InvalidParameter as exc:
            snappable = exc.field in asked and exc.nearest is not None and not state.strict_size
            if not snappable or kwargs[exc.field] == exc.nearest:
                raise APIError.invalid(exc) from None
            kwargs[exc.field] = exc.nearest
    else:
        raise APIError(400, f"size={asked} cannot be made by this model", param="size", code="invalid_size")
    meta: dict[str, Any] = {}
    if asked and any(kwargs[name] != value for name, value in asked.items()):
        meta["size_requested"] = "x".join(str(asked.get(name, "auto")) for name in SIZE_FIELDS)
    state.limits.check_request(kwargs, validated)  # a snapped size may be a little larger
    return validated, meta


def echoed(validated: Any, kwargs: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """`size`, `seconds` and `seed` as the API echoes them: as generated (the request, or else the family's
    defaults)."""
    width = kwargs.get("width") or getattr(validated, "width", None)
    height = kwargs.get("height") or getattr(validated, "height", None)
    frames = kwargs.get("num_frames") or getattr(validated, "num_frames", None)
    rate = kwargs.get("frame_rate") or getattr(validated, "frame_rate", None)
    meta: dict[str, Any] = {}
    if width and height:
        meta["size"] = f"{width}x{height}"
    if seconds is not None:
        meta["seconds"] = f"{seconds:g}"  # echoed as asked, as OpenAI does
    elif frames and rate:
        meta["seconds"] = f"{round(frames / rate, 2):g}"
    if "seed" in kwargs:
        meta["seed"] = kwargs["seed"]
    return meta


async def build_job(
    state: ServerState,
    request: Request,
    job_id: str,
    kind: str,
    parsed: BaseModel,
    files: dict[str, list[UploadFile]],
) -> Job:
    """Everything a request must pass before it is queued; a failure leaves no upload behind."""
    try:
        state.check_model(parsed.model)
        kwargs = engine_kwargs(parsed, state.models.extra_names)
        await check_prompts(state, parsed, kwargs)
        seconds = video_frames(state, parsed, kwargs) if kind == "video" else None
        if getattr(parsed, "n", None) is not None:
            kwargs["num_images_per_prompt"] = parsed.n
        state.limits.check_request(kwargs)
        await store_uploads(state, job_id, files, kwargs)
        if "seed" in state.models.extra_names and kwargs.get("seed") is None:
            kwargs["seed"] = secrets.randbelow(SEED_RANGE)  # drawn here so the job record keeps it
        kwargs = {"prompt": parsed.prompt, **kwargs}
        validated, meta = await validate_snapping(state, kwargs)  # may move width and height
        every = parsed.preview_every if parsed.preview_every is not None else state.preview_every
        if every:
            meta["preview_every"] = every
    except BaseException:
        state.store.remove_files(job_id)
        raise
    return Job(
        id=job_id,
        kind=kind,
        model=state.model_name,
        prompt=parsed.prompt,
        params=kwargs,
        meta={**echoed(validated, kwargs, seconds), **meta},
        request_id=request.state.request_id,
        owner=request.state.owner,
    )
