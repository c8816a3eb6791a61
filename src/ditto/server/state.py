"""What every route shares: the engine, the store, the worker; plus the checks common to both APIs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ditto.errors import InvalidParameter
from ditto.server.errors import APIError
from ditto.server.metrics import Metrics
from ditto.server.store import Job, JobStore
from ditto.server.worker import QueueFull, Worker

FALLBACK_FRAME_RATE = 24.0  # LTX-2's default; used only if the family's validate() does not say


@dataclass
class ServerState:
    engine: Any
    store: JobStore
    worker: Worker
    metrics: Metrics
    model_name: str
    aliases: set[str] = field(default_factory=set)
    started_at: float = field(default_factory=time.time)
    frame_rate: float | None = None  # the family's default, looked up once

    @classmethod
    def of(cls, request: Request) -> ServerState:
        return request.app.state.ditto

    def check_model(self, model: Any) -> None:
        """An absent model means the served one; any other name is OpenAI's `model_not_found`."""
        if model in (None, "") or model == self.model_name or model in self.aliases:
            return
        raise APIError(
            404,
            f"model={model!r} is not served here; this server serves {self.model_name!r}",
            param="model",
            code="model_not_found",
        )

    def check_kind(self, kind: str) -> None:
        if self.engine.output_kind != kind:
            route = "/v1/videos" if self.engine.output_kind == "video" else "/v1/images/generations"
            raise APIError(
                400,
                f"model={self.model_name!r} makes {self.engine.output_kind}s, not {kind}s; use {route}",
                param="model",
                code="unsupported_model",
            )

    async def validate(self, job_id: str, **kwargs: Any) -> Any:
        """The engine's own validation, off the event loop; failures drop the job's uploads."""
        try:
            return await run_in_threadpool(self.engine.validate, **kwargs)
        except InvalidParameter as exc:
            self.store.remove_files(job_id)
            raise APIError.invalid(exc) from None

    def submit(self, job: Job, on_done: Any = None) -> Job:
        try:
            return self.worker.submit(job, on_done)
        except QueueFull as exc:
            self.store.remove_files(job.id)
            retry = self.worker.retry_after()
            raise APIError(
                429,
                f"{exc}; retry after about {retry}s",
                code="queue_full",
                headers={"Retry-After": str(retry)},
            ) from None

    def default_frame_rate(self) -> float:
        if self.frame_rate is None:
            try:
                params = self.engine.validate(prompt="frame rate probe")
            except InvalidParameter:
                params = None
            self.frame_rate = float(getattr(params, "frame_rate", None) or FALLBACK_FRAME_RATE)
        return self.frame_rate


def served_aliases(model: str) -> set[str]:
    """A folder is also served under its last path component (what clients usually type)."""
    path = Path(model)
    return {path.name, os.fspath(path)} if path.name else set()
