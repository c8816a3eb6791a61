"""OpenAI's images API: generations (JSON) and edits (multipart). The request awaits its own job; a client
that disconnects meanwhile cancels it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ditto.server.errors import APIError
from ditto.server.intake import build_job
from ditto.server.params import JSON, MULTIPART, read_body
from ditto.server.state import ServerState
from ditto.server.store import Job, new_job_id

router = APIRouter(tags=["images"])

# How a failed image job maps back to an HTTP status for the waiting client.
FAILURE_STATUS = {"invalid_parameter": 400, "interrupted": 503, "cancelled": 503, "timeout": 504}


async def client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body is read: what comes next is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_image_job(state: ServerState, request: Request, job: Job) -> Job:
    """Queue the job and wait for the worker to finish it (the event loop stays free meanwhile); cancel it
    if the client goes away first."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Job] = loop.create_future()

    def on_done(finished: Job) -> None:
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(finished))

    state.submit(job, on_done)
    watcher = asyncio.ensure_future(client_gone(request))
    try:
        await asyncio.wait({done, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if not done.done():  # the client left: free the worker for someone who is still there
        state.worker.cancel(job.id, "disconnected")
        await done
    finished = done.result()
    if finished.status != "completed":
        error = finished.error or {}
        status = FAILURE_STATUS.get(error.get("code", ""), 500)
        raise APIError(
            status, error.get("message", "generation failed"), error.get("param"), error.get("code")
        )
    return finished


async def images_response(request: Request, job: Job, response_format: str | None) -> dict[str, Any]:
    state = ServerState.of(request)
    try:
        if response_format == "url":
            base = str(request.base_url).rstrip("/")
            data = [{"url": f"{base}/v1/images/{job.id}/{i}"} for i in range(len(job.outputs))]
        else:
            paths = [state.store.outputs_dir / name for name in job.outputs]
            data = [{"b64_json": text} for text in await run_in_threadpool(_b64_files, paths)]
    finally:
        state.purger.release(job.id)
    response = {"created": int(job.created_at), "data": data, "size": job.meta.get("size")}
    response.update(output_format="png", seed=job.meta.get("seed"), id=job.id)
    if "size_requested" in job.meta:
        response["size_requested"] = job.meta["size_requested"]
    if "cache" in job.meta:
        response["cache_stats"] = job.meta["cache"]  # ditto's: the step cache's record
    return response


def _b64_files(paths: list) -> list[str]:
    return [base64.b64encode(path.read_bytes()).decode("ascii") for path in paths]


async def generate(request: Request, edit: bool) -> dict:
    state = ServerState.of(request)
    state.check_kind("image")
    allowed = (MULTIPART,) if edit else (JSON,)
    fields, files = await read_body(request, allowed, max_files=state.limits.max_images + 1)
    parsed = state.models.parse(state.models.edit if edit else state.models.image, fields)
    if edit and not files.get("image"):
        raise APIError(400, "image is required: upload one or more images", param="image", code="missing_required_parameter")  # fmt: skip
    if not edit and files:
        field = next(iter(files))
        raise APIError(400, f"{field!r} takes no file here; use /v1/images/edits", param=field, code="unknown_parameter")  # fmt: skip
    job = await build_job(state, request, new_job_id("image"), "image", parsed, files)
    finished = await run_image_job(state, request, job)
    return await images_response(request, finished, parsed.response_format)


@router.post("/v1/images/generations")
async def create_images(request: Request) -> dict[str, Any]:
    """Make images from a prompt (OpenAI's images.generate); ditto's family fields as extra body fields."""
    return await generate(request, edit=False)


@router.post("/v1/images/edits")
async def edit_images(request: Request) -> dict[str, Any]:
    """Make images from a prompt and reference images (OpenAI's images.edit, multipart)."""
    return await generate(request, edit=True)


@router.get("/v1/images/{job_id}/{index}")
async def image_file(request: Request, job_id: str, index: int) -> FileResponse:
    """Where `response_format="url"` points."""
    state = ServerState.of(request)
    job = state.owned_job(job_id, request.state.owner, "image")
    if job.purged_at is not None:
        raise APIError(410, f"image job {job_id!r} was purged by the retention policy", code="purged")
    if not 0 <= index < len(job.outputs):
        raise APIError(404, f"no image {index} for job {job_id!r}", param="index", code="not_found")
    return FileResponse(state.store.outputs_dir / job.outputs[index], media_type="image/png")
