"""OpenAI's videos API: create (returns a queued job at once), retrieve, list, download, cancel, delete.
Every route sees only the caller's own jobs (its API key's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ditto.server.errors import APIError
from ditto.server.intake import build_job
from ditto.server.params import JSON, MULTIPART, read_body
from ditto.server.state import ServerState
from ditto.server.store import Job, new_job_id

router = APIRouter(tags=["videos"])


def video_object(job: Job, state: ServerState | None = None) -> dict[str, Any]:
    """The `Video` object of OpenAI's API, filled from a stored job (plus ditto's seed and, when the size
    was snapped, the size asked for)."""
    error = None
    if job.error:
        error = {"code": job.error.get("code", "failed"), "message": job.error.get("message", "")}
        if job.error.get("param"):
            error["param"] = job.error["param"]
    if job.purged_at is not None:
        error = {"code": "purged", "message": "the output was deleted by the retention policy"}
    expires = None
    if state is not None and job.completed_at is not None:
        expires = int(job.purged_at or job.completed_at + state.purger.retention.max_age_s)
    video = {
        "id": job.id,
        "object": "video",
        "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at and job.status == "completed" else None,
        "expires_at": expires,
        "model": job.model,
        "progress": job.progress,
        "prompt": job.prompt,
        "seconds": job.meta.get("seconds", "auto"),
        "size": job.meta.get("size", "auto"),
        "status": job.status,
        "error": error,
        "remixed_from_video_id": None,
        "seed": job.meta.get("seed"),
    }
    if "size_requested" in job.meta:
        video["size_requested"] = job.meta["size_requested"]
    if "cache" in job.meta:
        video["cache_stats"] = job.meta["cache"]  # ditto's: the step cache's record
    return video


# The engine's keyword -> the name a client of this route sent it under (OpenAI's `input_reference` files,
# their `input_reference_frames`), so an error names the field the client knows.
SENT_AS = {"image": "input_reference", "image_frames": "input_reference_frames"}


@router.post("/v1/videos")
async def create_video(request: Request) -> dict[str, Any]:
    """Queue a video (OpenAI's videos.create; JSON, or multipart with an `input_reference` image)."""
    state = ServerState.of(request)
    state.check_kind("video")
    fields, files = await read_body(request, (JSON, MULTIPART), max_files=state.limits.max_images + 1)
    parsed = state.models.parse(state.models.video, fields)
    try:
        job = await build_job(state, request, new_job_id("video"), "video", parsed, files)
    except APIError as exc:
        sent = SENT_AS.get(exc.param or "")
        if sent and (sent in files or getattr(parsed, sent, None) is not None):
            exc.param, exc.message = sent, f"{sent}: {exc.message}"
        raise
    return video_object(state.submit(job), state)


@router.get("/v1/videos")
async def list_videos(
    request: Request, after: str | None = None, limit: int = 20, order: str = "desc"
) -> dict[str, Any]:
    """The caller's video jobs, newest first (`order=asc`: oldest first), `limit` per page after `after`."""
    state = ServerState.of(request)
    jobs, has_more = page_of_jobs(state, request, "video", after, limit, order)
    page = [video_object(job, state) for job in jobs]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": has_more,
    }


def page_of_jobs(
    state: ServerState, request: Request, kind: str | None, after: str | None, limit: int, order: str
) -> tuple[list[Job], bool]:
    if not 1 <= limit <= 100:
        raise APIError(400, f"limit={limit} must be between 1 and 100", param="limit", code="invalid_value")
    if order not in ("asc", "desc"):
        raise APIError(400, f"order={order!r} must be 'asc' or 'desc'", param="order", code="invalid_value")
    owner = request.state.owner
    jobs = state.store.list(kind, owner, after=after, limit=limit + 1, descending=order == "desc")
    return jobs[:limit], len(jobs) > limit


@router.get("/v1/videos/{video_id}")
async def retrieve_video(request: Request, video_id: str) -> dict[str, Any]:
    state = ServerState.of(request)
    return video_object(state.owned_job(video_id, request.state.owner, "video"), state)


@router.get("/v1/videos/{video_id}/content")
async def download_video(request: Request, video_id: str, variant: str = "video") -> FileResponse:
    state = ServerState.of(request)
    job = state.owned_job(video_id, request.state.owner, "video")
    if variant != "video":
        raise APIError(
            400, f"variant={variant!r} is not available; use 'video'", param="variant", code="invalid_value"
        )
    if job.purged_at is not None:
        raise APIError(410, f"video {video_id!r} was purged by the retention policy", code="purged")
    if job.status != "completed" or not job.outputs:
        detail = f"{job.status} ({job.progress}%)"
        if job.error:
            detail += f": {job.error.get('message')}"
        raise APIError(409, f"video {video_id!r} has no content: it is {detail}", code="video_not_ready")
    path = state.store.outputs_dir / job.outputs[0]
    return FileResponse(path, media_type="video/mp4", filename=f"{video_id}.mp4")


@router.post("/v1/videos/{video_id}/cancel")
async def cancel_video(request: Request, video_id: str) -> dict[str, Any]:
    """Stop a queued or running job (within one step); its record stays, failed with code `cancelled`."""
    state = ServerState.of(request)
    state.owned_job(video_id, request.state.owner, "video")
    await state.cancel(video_id, "cancelled")
    return video_object(state.owned_job(video_id, request.state.owner, "video"), state)


@router.delete("/v1/videos/{video_id}")
async def delete_video(request: Request, video_id: str) -> dict[str, Any]:
    """Delete a job and its files; a queued job never runs, a running one stops at its next step."""
    state = ServerState.of(request)
    state.owned_job(video_id, request.state.owner, "video")
    state.worker.cancel(video_id, "deleted")
    state.store.delete(video_id)
    return {"id": video_id, "object": "video.deleted", "deleted": True}
