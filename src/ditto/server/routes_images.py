"""OpenAI's images API: generations (JSON) and edits (multipart). The request awaits its own job."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ditto.server.errors import APIError
from ditto.server.params import coerce, extra_kwargs, parse_size, read_body, require_prompt, save_image_upload
from ditto.server.state import ServerState
from ditto.server.store import Job, new_job_id

router = APIRouter()

IMAGE_FIELDS = {"prompt", "model", "n", "size", "response_format", "stream", "output_format", "image"}
MAX_IMAGES = 10  # OpenAI's own bound on n
# How a failed image job maps back to an HTTP status for the waiting client.
FAILURE_STATUS = {"invalid_parameter": 400, "interrupted": 503, "cancelled": 503}


def image_kwargs(state: ServerState, fields: dict[str, Any], from_form: bool) -> tuple[str, dict[str, Any]]:
    prompt = require_prompt(fields)
    state.check_model(fields.get("model"))
    state.check_kind("image")
    if fields.get("stream") not in (None, False, "false", ""):
        raise APIError(
            400, "stream=true is not supported; leave it out", param="stream", code="invalid_value"
        )
    if fields.get("output_format") not in (None, "", "png"):
        value = fields["output_format"]
        raise APIError(400, f"output_format={value!r} is not supported; use 'png'", param="output_format")
    if fields.get("response_format") not in (None, "", "b64_json", "url"):
        value = fields["response_format"]
        raise APIError(400, f"response_format={value!r} must be 'b64_json' or 'url'", param="response_format")
    kwargs = extra_kwargs(fields, IMAGE_FIELDS, from_form)
    size = parse_size(fields.get("size"))
    if size is not None:
        kwargs["width"], kwargs["height"] = size
    if fields.get("n") not in (None, ""):
        n = coerce("n", fields["n"], int, from_form)
        if not 1 <= n <= MAX_IMAGES:
            raise APIError(400, f"n={n} must be between 1 and {MAX_IMAGES}", param="n", code="invalid_value")
        kwargs["num_images_per_prompt"] = n
    return prompt, kwargs


async def run_image_job(state: ServerState, request: Request, job: Job) -> Job:
    """Queue the job and wait for the worker to finish it (the event loop stays free meanwhile)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Job] = loop.create_future()

    def on_done(finished: Job) -> None:
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(finished))

    state.submit(job, on_done)
    finished = await done
    if finished.status != "completed":
        error = finished.error or {}
        status = FAILURE_STATUS.get(error.get("code", ""), 500)
        raise APIError(
            status, error.get("message", "generation failed"), error.get("param"), error.get("code")
        )
    return finished


async def images_response(request: Request, job: Job, response_format: str | None) -> dict[str, Any]:
    state = ServerState.of(request)
    if response_format == "url":
        base = str(request.base_url).rstrip("/")
        data = [{"url": f"{base}/v1/images/{job.id}/{i}"} for i in range(len(job.outputs))]
    else:
        paths = [state.store.outputs_dir / name for name in job.outputs]
        data = [{"b64_json": text} for text in await run_in_threadpool(_b64_files, paths)]
    extra = (
        {"cache_stats": job.meta["cache"]} if "cache" in job.meta else {}
    )  # ditto's: the step cache's record
    return {
        "created": int(job.created_at),
        "data": data,
        "size": job.meta.get("size"),
        "output_format": "png",
        **extra,
    }


def _b64_files(paths: list) -> list[str]:
    return [base64.b64encode(path.read_bytes()).decode("ascii") for path in paths]


async def generate(request: Request, fields: dict, files: dict, from_form: bool, edit: bool) -> dict:
    state = ServerState.of(request)
    job_id = new_job_id("image")
    try:
        prompt, kwargs = image_kwargs(state, fields, from_form)
        if edit:
            uploads = files.get("image") or []
            if not uploads:
                raise APIError(400, "image is required: upload one or more images", param="image")
            folder = state.store.uploads_dir / job_id
            paths = [
                await save_image_upload(f, folder / f"image-{i}.png", "image") for i, f in enumerate(uploads)
            ]
            kwargs["image"] = [str(path) for path in paths]
    except APIError:
        state.store.remove_files(job_id)
        raise
    await state.validate(job_id, prompt=prompt, **kwargs)
    job = Job(
        id=job_id,
        kind="image",
        model=state.model_name,
        prompt=prompt,
        params={"prompt": prompt, **kwargs},
        request_id=request.state.request_id,
    )
    finished = await run_image_job(state, request, job)
    return await images_response(request, finished, fields.get("response_format"))


@router.post("/v1/images/generations")
async def create_images(request: Request) -> dict[str, Any]:
    fields, files, from_form = await read_body(request)
    return await generate(request, fields, files, from_form, edit=False)


@router.post("/v1/images/edits")
async def edit_images(request: Request) -> dict[str, Any]:
    fields, files, from_form = await read_body(request)
    return await generate(request, fields, files, from_form, edit=True)


@router.get("/v1/images/{job_id}/{index}")
async def image_file(request: Request, job_id: str, index: int) -> FileResponse:
    """Where `response_format="url"` points."""
    job = ServerState.of(request).store.get(job_id)
    if job is None or job.kind != "image" or not 0 <= index < len(job.outputs):
        raise APIError(404, f"no image {index} for job {job_id!r}", code="not_found")
    return FileResponse(
        ServerState.of(request).store.outputs_dir / job.outputs[index], media_type="image/png"
    )
