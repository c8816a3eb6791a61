"""OpenAI's videos API: create (returns a queued job at once), retrieve, list, download, delete (cancel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ditto.server.errors import APIError
from ditto.server.params import (
    coerce,
    extra_kwargs,
    frames_for_seconds,
    parse_size,
    read_body,
    require_prompt,
    save_image_upload,
)
from ditto.server.state import ServerState
from ditto.server.store import Job, new_job_id

router = APIRouter()

VIDEO_FIELDS = {"prompt", "model", "seconds", "size", "input_reference"}


def video_object(job: Job) -> dict[str, Any]:
    """The `Video` object of OpenAI's API, filled from a stored job."""
    error = None
    if job.error:
        error = {"code": job.error.get("code", "failed"), "message": job.error.get("message", "")}
        if job.error.get("param"):
            error["param"] = job.error["param"]
    extra = (
        {"cache_stats": job.meta["cache"]} if "cache" in job.meta else {}
    )  # ditto's: the step cache's record
    return {
        **extra,
        "id": job.id,
        "object": "video",
        "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at and job.status == "completed" else None,
        "expires_at": None,
        "model": job.model,
        "progress": job.progress,
        "prompt": job.prompt,
        "seconds": job.meta.get("seconds", "auto"),
        "size": job.meta.get("size", "auto"),
        "status": job.status,
        "error": error,
        "remixed_from_video_id": None,
    }


def video_job(state: ServerState, job_id: str) -> Job:
    job = state.store.get(job_id)
    if job is None or job.kind != "video":
        raise APIError(
            404, f"video_id={job_id!r} is not a known video job", param="video_id", code="not_found"
        )
    return job


async def video_kwargs(
    state: ServerState, job_id: str, request: Request
) -> tuple[str, dict[str, Any], float | None]:
    """(prompt, engine kwargs, the clip length in seconds when that is what set the frame count)."""
    fields, files, from_form = await read_body(request)
    prompt = require_prompt(fields)
    state.check_model(fields.get("model"))
    state.check_kind("video")
    kwargs = extra_kwargs(fields, VIDEO_FIELDS, from_form)
    size = parse_size(fields.get("size"))
    if size is not None:
        kwargs["width"], kwargs["height"] = size
    seconds = None
    if fields.get("seconds") not in (None, "") and "num_frames" not in kwargs:
        seconds = coerce("seconds", fields["seconds"], float, from_form=True)
        if seconds <= 0:
            raise APIError(
                400, f"seconds={seconds:g} must be positive", param="seconds", code="invalid_value"
            )
        rate = kwargs.get("frame_rate") or state.default_frame_rate()
        kwargs["num_frames"] = frames_for_seconds(seconds, rate, state.engine.family)
    if "input_reference" in fields:
        raise APIError(
            400,
            "input_reference must be an uploaded image file (multipart), not a reference object",
            param="input_reference",
            code="invalid_value",
        )
    if "input_reference" in files:
        dest = state.store.uploads_dir / job_id / "input_reference.png"
        kwargs["image"] = [str(await save_image_upload(files["input_reference"][0], dest, "input_reference"))]
    return prompt, kwargs, seconds


def describe(validated: Any, kwargs: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """`size` and `seconds` as the API echoes them, from the request or else the family's defaults."""
    width = kwargs.get("width") or getattr(validated, "width", None)
    height = kwargs.get("height") or getattr(validated, "height", None)
    frames = kwargs.get("num_frames") or getattr(validated, "num_frames", None)
    rate = kwargs.get("frame_rate") or getattr(validated, "frame_rate", None)
    meta = {}
    if width and height:
        meta["size"] = f"{width}x{height}"
    if seconds is not None:
        meta["seconds"] = f"{seconds:g}"  # echoed as asked, as OpenAI does
    elif frames and rate:
        meta["seconds"] = f"{round(frames / rate, 2):g}"
    return meta


@router.post("/v1/videos")
async def create_video(request: Request) -> dict[str, Any]:
    state = ServerState.of(request)
    job_id = new_job_id("video")
    try:
        prompt, kwargs, seconds = await video_kwargs(state, job_id, request)
    except APIError:
        state.store.remove_files(job_id)
        raise
    try:
        validated = await state.validate(job_id, prompt=prompt, **kwargs)
    except APIError as exc:
        if exc.param == "image":  # the engine's name for what OpenAI's API calls input_reference
            exc.param, exc.message = "input_reference", f"input_reference: {exc.message}"
        raise
    job = Job(
        id=job_id,
        kind="video",
        model=state.model_name,
        prompt=prompt,
        params={"prompt": prompt, **kwargs},
        meta=describe(validated, kwargs, seconds),
        request_id=request.state.request_id,
    )
    return video_object(state.submit(job))


@router.get("/v1/videos")
async def list_videos(
    request: Request, after: str | None = None, limit: Any = 20, order: str = "desc"
) -> dict:
    state = ServerState.of(request)
    limit = coerce("limit", limit, int, from_form=True)
    if not 1 <= limit <= 100:
        raise APIError(400, f"limit={limit} must be between 1 and 100", param="limit", code="invalid_value")
    if order not in ("asc", "desc"):
        raise APIError(400, f"order={order!r} must be 'asc' or 'desc'", param="order", code="invalid_value")
    jobs = state.store.list("video", after=after, limit=limit + 1, descending=order == "desc")
    page = [video_object(job) for job in jobs[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(jobs) > limit,
    }


@router.get("/v1/videos/{video_id}")
async def retrieve_video(request: Request, video_id: str) -> dict[str, Any]:
    return video_object(video_job(ServerState.of(request), video_id))


@router.get("/v1/videos/{video_id}/content")
async def download_video(request: Request, video_id: str, variant: str = "video") -> FileResponse:
    job = video_job(ServerState.of(request), video_id)
    if variant != "video":
        raise APIError(
            400, f"variant={variant!r} is not available; use 'video'", param="variant", code="invalid_value"
        )
    if job.status != "completed" or not job.outputs:
        detail = f"{job.status} ({job.progress}%)"
        if job.error:
            detail += f": {job.error.get('message')}"
        raise APIError(409, f"video {video_id!r} has no content: it is {detail}", code="video_not_ready")
    path = ServerState.of(request).store.outputs_dir / job.outputs[0]
    return FileResponse(path, media_type="video/mp4", filename=f"{video_id}.mp4")


@router.delete("/v1/videos/{video_id}")
async def delete_video(request: Request, video_id: str) -> dict[str, Any]:
    """Delete a job and its files; a queued job never runs, a running one stops at its next step."""
    state = ServerState.of(request)
    video_job(state, video_id)
    state.worker.cancel(video_id)
    state.store.delete(video_id)
    return {"id": video_id, "object": "video.deleted", "deleted": True}
