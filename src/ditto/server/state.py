"""What every route shares: the engine, the store, the worker; plus the checks common to both APIs."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from ditto.errors import InvalidParameter
from ditto.server.errors import APIError
from ditto.server.limits import Limits
from ditto.server.metrics import Metrics
from ditto.server.retention import Purger
from ditto.server.schemas import RequestModels
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
    limits: Limits
    models: RequestModels
    purger: Purger
    strict_size: bool = False  # refuse a size the family cannot make instead of snapping it
    count_tokens: Any = None  # text -> tokens, with the model's tokenizer (None: not countable)
    aliases: set[str] = field(default_factory=set)
    started_at: float = field(default_factory=time.time)
    frame_rate: float | None = None  # the family's default, looked up once
    preview_every: int = 0  # a preview every N steps for requests that do not say (0: none)
    form: dict[str, Any] | None = None  # /v1/fields' defaults and size presets, computed once

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

    def owned_job(self, job_id: str, owner: str, kind: str | None = None) -> Job:
        """The caller's job (of that kind); another key's job is as unknown as a missing one."""
        job = self.store.get(job_id)
        if job is None or job.owner != owner or (kind is not None and job.kind != kind):
            param, what = ("video_id", "a known video job") if kind == "video" else ("job_id", "a known job")
            raise APIError(404, f"{param}={job_id!r} is not {what}", param=param, code="not_found")
        return job

    async def cancel(self, job_id: str, reason: str, wait_s: float = 5.0) -> None:
        """Ask the worker to stop the job, then wait (a little) until it has, so the answer shows it."""
        if not self.worker.cancel(job_id, reason):
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            job = self.store.get(job_id)
            if job is None or job.status in ("completed", "failed"):
                return
            await asyncio.sleep(0.02)

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


def tokenizer_counter(engine: Any) -> Any:
    """text -> token count with the model's own tokenizer, or None when the engine shows none."""
    components = getattr(getattr(engine, "pipeline", None), "components", None)
    tokenizer = getattr(components, "tokenizer", None) or getattr(
        getattr(components, "text_encoder", None), "tokenizer", None
    )
    if tokenizer is None:
        return None

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count
