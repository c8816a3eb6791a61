"""create_app(engine, data_dir, ...): the FastAPI app. The engine is a parameter so tests can inject one."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse

from ditto import __version__
from ditto.server.datadir import DataDirLock
from ditto.server.errors import APIError, install_error_handlers
from ditto.server.guard import Guard
from ditto.server.limits import Limits
from ditto.server.metrics import Metrics
from ditto.server.middleware import RequestContext
from ditto.server.openapi import install_openapi
from ditto.server.preview import LatentPreviewer
from ditto.server.retention import Purger
from ditto.server.routes_images import router as images_router
from ditto.server.routes_jobs import router as jobs_router
from ditto.server.routes_videos import router as videos_router
from ditto.server.schemas import RequestModels
from ditto.server.settings import ServerSettings
from ditto.server.state import ServerState, served_aliases, tokenizer_counter
from ditto.server.store import JobStore
from ditto.server.ui import router as ui_router
from ditto.server.worker import Worker

log = logging.getLogger("ditto.server")


common = APIRouter()


@common.get("/health")
async def health(request: Request) -> dict[str, Any]:
    state = ServerState.of(request)
    running = state.worker.running()
    return {
        "status": "ok",
        "model": state.model_name,
        "family": state.engine.family,
        "output_kind": state.engine.output_kind,
        "queue_depth": state.worker.depth(),
        "running": running.id if running else None,
    }


def model_card(state: ServerState) -> dict[str, Any]:
    return {"id": state.model_name, "object": "model", "created": int(state.started_at), "owned_by": "ditto"}


@common.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [model_card(ServerState.of(request))]}


@common.get("/v1/models/{model:path}")
async def get_model(request: Request, model: str) -> dict[str, Any]:
    state = ServerState.of(request)
    state.check_model(model)
    return model_card(state)


@common.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    state = ServerState.of(request)
    running = 1 if state.worker.running() else 0
    stored = state.store.bytes_stored()
    text = state.metrics.render(state.worker.depth(), running, state.store.counts(), stored)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def create_app(
    engine: Any,
    data_dir: str | Path,
    model_name: str | None = None,
    settings: ServerSettings | None = None,
    lock: DataDirLock | None = None,
    **overrides: Any,
) -> FastAPI:
    """An app serving `engine` (anything with family, output_kind, validate(), generate()).

    Jobs and outputs live under `data_dir`, which the app locks (or `lock`, taken by `ditto serve`
    before it loaded the model). `overrides` replace single fields of `settings` (max_queue=3, ...). The
    worker thread starts with the app's lifespan and, on shutdown, gets `shutdown_grace` seconds to
    finish the running job before that job is stopped.
    """
    settings = dataclasses.replace(settings or ServerSettings(), **overrides)
    if settings.max_queue < 1:
        raise ValueError(f"max_queue={settings.max_queue} must be at least 1")
    lock = lock if lock is not None and lock.held else DataDirLock(data_dir).acquire()
    name = model_name or getattr(engine, "model", None) or engine.family
    limits = settings.limits or Limits.for_family(engine.family)
    store = JobStore(Path(data_dir))
    metrics = Metrics()
    purger = Purger(store, settings.retention)
    worker = Worker(
        engine, store, metrics, settings.max_queue, purger, limits.job_timeout_s, settings.max_attempts,
        LatentPreviewer(),
    )  # fmt: skip
    models = RequestModels(engine.family)
    state = ServerState(
        engine, store, worker, metrics, name, limits, models, purger, settings.strict_size,
        tokenizer_counter(engine), served_aliases(name), preview_every=settings.preview_every,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        log.info(
            "serving %s (%s) from %s; retention %s",
            name,
            engine.family,
            data_dir,
            settings.retention.describe(),
        )
        yield
        log.info("shutting down: finishing or stopping the running job")
        worker.stop(settings.shutdown_grace)
        store.close()
        close = getattr(engine, "close", None)
        if close is not None:
            close()  # a parallel engine's other processes stop with the server (before uvicorn exits)
        lock.release()

    app = FastAPI(title="ditto", version=__version__, lifespan=lifespan)
    app.state.ditto = state
    install_error_handlers(app)
    routers = (common, videos_router, images_router, jobs_router, *((ui_router,) if settings.ui else ()))
    for router in routers:
        app.include_router(router)
    install_openapi(app, models, API_DESCRIPTION.format(family=engine.family))
    install_middleware(app, settings, limits, metrics)
    return app


def install_middleware(app: FastAPI, settings: ServerSettings, limits: Limits, metrics: Metrics) -> None:
    """Outermost last: the request context (id, log, body caps and timeout), CORS when configured (so a
    preflight is answered), then the guard (Host, Origin, API key)."""
    app.add_middleware(Guard, access=settings.access, metrics=metrics)
    if settings.access.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.access.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "x-request-id"],
        )
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        max_json_bytes=settings.json_body_bytes(limits),
        body_timeout=settings.body_timeout_s,
        metrics=metrics,
    )


API_DESCRIPTION = """OpenAI-compatible images and videos APIs in front of one {family} model, plus ditto's
job routes (/v1/jobs: live progress, Server-Sent Events, cancel) and /v1/fields (the request fields and
this server's limits). ditto's family parameters are extra body fields under diffusers' names."""


__all__ = ["APIError", "create_app"]
