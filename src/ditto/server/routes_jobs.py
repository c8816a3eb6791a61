"""ditto's own routes over jobs of every kind (a web page polls or streams these): a job with its live
progress (stage, step k of n, elapsed, ETA, seconds per stage, the latest preview's step), a Server-Sent
Events stream of it, its latest preview image, cancel and delete; and the served family's request fields,
their defaults and this server's limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ditto.fields import FAMILIES, FIELDS, describe
from ditto.server import form
from ditto.server.errors import APIError
from ditto.server.routes_videos import page_of_jobs
from ditto.server.schemas import extra_entries
from ditto.server.state import ServerState
from ditto.server.store import Job

router = APIRouter(tags=["jobs"])

FINISHED = ("completed", "failed")
STREAM_INTERVAL_S = 0.5
STREAM_MAX_S = 6 * 3600.0  # a stream ends by itself after this long (the client may reconnect)


def job_object(state: ServerState, job: Job) -> dict[str, Any]:
    """A job as ditto describes it: OpenAI's fields and more (kind, params, live progress, timings)."""
    live = state.worker.live(job.id) if job.status == "in_progress" else None
    return {
        "id": job.id,
        "object": "job",
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        # while running: stage, step, total, stage_step, stage_total, elapsed_s, eta_s, stages, preview
        "live": live,
        "queue_position": state.worker.position(job.id) if job.status == "queued" else None,
        "model": job.model,
        "prompt": job.prompt,
        "params": {k: v for k, v in job.params.items() if k != "image"},
        "meta": job.meta,
        "error": job.error,
        "timings": job.timings,
        "attempts": job.attempts,
        "request_id": job.request_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "purged": job.purged_at is not None,
        "content": content_paths(job),  # where its files download from (the OpenAI routes), once completed
    }


def content_paths(job: Job) -> list[str]:
    if job.status != "completed" or job.purged_at is not None:
        return []
    if job.kind == "video":
        return [f"/v1/videos/{job.id}/content"]
    return [f"/v1/images/{job.id}/{index}" for index in range(len(job.outputs))]


@router.get("/v1/jobs")
async def list_jobs(
    request: Request, kind: str | None = None, after: str | None = None, limit: int = 20, order: str = "desc"
) -> dict[str, Any]:
    """The caller's jobs of every kind (or `kind=image|video`), newest first."""
    state = ServerState.of(request)
    jobs, has_more = page_of_jobs(state, request, kind, after, limit, order)
    return {"object": "list", "data": [job_object(state, job) for job in jobs], "has_more": has_more}


@router.get("/v1/jobs/{job_id}")
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    state = ServerState.of(request)
    return job_object(state, state.owned_job(job_id, request.state.owner))


@router.get("/v1/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    """Server-Sent Events: the job object each time it changes, until it is finished (or gone)."""
    state = ServerState.of(request)
    owner = request.state.owner
    state.owned_job(job_id, owner)

    async def events() -> AsyncIterator[str]:
        last, loop = None, asyncio.get_running_loop()
        deadline = loop.time() + STREAM_MAX_S
        while loop.time() < deadline and not await request.is_disconnected():
            job = state.store.get(job_id)
            if job is None or job.owner != owner:
                yield "event: gone\ndata: {}\n\n"
                return
            text = json.dumps(job_object(state, job))
            if text != last:
                last = text
                yield f"event: job\ndata: {text}\n\n"
            if job.status in FINISHED:
                return
            await asyncio.sleep(STREAM_INTERVAL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.get("/v1/jobs/{job_id}/preview")
async def job_preview(request: Request, job_id: str) -> Response:
    """The running job's latest preview (PNG, one pixel per latent cell), made every `preview_every` steps;
    `live.preview.step` says which step it shows."""
    state = ServerState.of(request)
    job = state.owned_job(job_id, request.state.owner)
    shown = state.worker.preview(job_id)
    if shown is None:
        every = job.meta.get("preview_every")
        why = (
            f"it asked for none (preview_every={every or 0})"
            if not every
            else f"previews exist while it runs, every {every} steps; it is {job.status}"
        )
        raise APIError(404, f"job {job_id!r} has no preview now: {why}", param="job_id", code="no_preview")
    step, png = shown
    headers = {"Cache-Control": "no-store", "X-Preview-Step": str(step)}
    return Response(png, media_type="image/png", headers=headers)


@router.post("/v1/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    """Stop a queued or running job of any kind (within one step); its record stays, failed/cancelled."""
    state = ServerState.of(request)
    state.owned_job(job_id, request.state.owner)
    await state.cancel(job_id, "cancelled")
    return job_object(state, state.owned_job(job_id, request.state.owner))


@router.delete("/v1/jobs/{job_id}")
async def delete_job(request: Request, job_id: str) -> dict[str, Any]:
    state = ServerState.of(request)
    state.owned_job(job_id, request.state.owner)
    state.worker.cancel(job_id, "deleted")
    state.store.delete(job_id)
    return {"id": job_id, "object": "job.deleted", "deleted": True}


# Besides a family's extra fields: OpenAI's own, and file fields (api "upload": a video or a sound, the form
# draws a file input for each).
SHOWN_APIS = ("openai", "upload")


@router.get("/v1/fields")
async def fields(request: Request) -> dict[str, Any]:
    """The served family's request fields (name, type, help, choices, CLI flags, API names, the LTX-2
    pipelines that take them), their defaults for this checkpoint, sizes it can make, both per LTX-2
    pipeline, the LoRAs fused at load, the preview default and this server's limits: what a form needs to
    draw itself."""
    state = ServerState.of(request)
    family = state.engine.family
    extras = {entry.name for entry in extra_entries(family)}
    known = family if family in FAMILIES else None  # a family the table does not know: every field
    table = [item for item in describe(known) if item["name"] in extras or item["api"] in SHOWN_APIS]
    if state.form is None:
        state.form = await run_in_threadpool(form_values, state, [item["name"] for item in table])
    return {
        "family": family,
        "output_kind": state.engine.output_kind,
        "fields": table,
        **state.form,
        "preview_every": state.preview_every,
        "limits": state.limits.describe(),
        "strict_size": state.strict_size,
    }


def form_values(state: ServerState, names: list[str]) -> dict[str, Any]:
    """Defaults, size presets (also per LTX-2 pipeline), the pipelines this checkpoint cannot run and LoRAs:
    the family's `validate` answers them, once per server."""
    engine, max_pixels = state.engine, state.limits.max_pixels
    found = form.defaults(engine, names)
    pipelines = list(FIELDS["pipeline"].choices) if "pipeline" in names else []
    runs, unavailable = form.pipeline_status(engine, found, pipelines)
    return {
        "defaults": found,
        "size_presets": form.size_presets(engine, found, max_pixels, runs),
        "pipelines": form.pipeline_forms(engine, names, found, max_pixels, pipelines, runs),
        # offered but greyed out on the page, with the reason (LTX-2's two-stage recipes need the upsampler)
        "unavailable_pipelines": unavailable,
        "loras": form.lora_names(engine),
    }
