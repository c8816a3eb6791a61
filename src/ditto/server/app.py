"""create_app(engine, data_dir, ...): the FastAPI app. The engine is a parameter so tests can inject one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse

from ditto.server.errors import APIError, install_error_handlers
from ditto.server.metrics import Metrics
from ditto.server.middleware import RequestContext
from ditto.server.routes_images import router as images_router
from ditto.server.routes_videos import router as videos_router
from ditto.server.state import ServerState, served_aliases
from ditto.server.store import JobStore
from ditto.server.worker import Worker

log = logging.getLogger("ditto.server")

DEFAULT_MAX_QUEUE = 64
DEFAULT_MAX_BODY_BYTES = 50 << 20

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
    text = state.metrics.render(state.worker.depth(), running, state.store.counts())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def create_app(
    engine: Any,
    data_dir: str | Path,
    model_name: str | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    shutdown_grace: float = 30.0,
) -> FastAPI:
    """An app serving `engine` (anything with family, output_kind, validate(), generate()).

    Jobs and outputs live under `data_dir`; the worker thread starts with the app's lifespan and, on
    shutdown, gets `shutdown_grace` seconds to finish the running job before that job is stopped.
    """
    if max_queue < 1:
        raise ValueError(f"max_queue={max_queue} must be at least 1")
    name = model_name or getattr(engine, "model", None) or engine.family
    store = JobStore(Path(data_dir))
    metrics = Metrics()
    worker = Worker(engine, store, metrics, max_queue)
    state = ServerState(engine, store, worker, metrics, name, served_aliases(name))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        log.info("serving %s (%s) from %s", name, engine.family, data_dir)
        yield
        log.info("shutting down: finishing or stopping the running job")
        worker.stop(shutdown_grace)
        store.close()
        close = getattr(engine, "close", None)
        if close is not None:
            close()  # a parallel engine's other processes stop with the server (before uvicorn exits)

    app = FastAPI(title="ditto", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ditto = state
    install_error_handlers(app)
    for router in (common, videos_router, images_router):
        app.include_router(router)
    app.add_middleware(RequestContext, max_body_bytes=max_body_bytes, metrics=metrics)
    return app


__all__ = ["APIError", "create_app"]
