"""The outer ASGI layer in front of every route: request id, access log, body-size limit (413), and a
body-read timeout (408), so a client that declares a body and sends it slowly, or never, is cut off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any

from ditto.server.errors import BodyTimeout, BodyTooLarge, header_dict, send_error
from ditto.server.metrics import Metrics

log = logging.getLogger("ditto.server.http")

DRAIN_LIMIT = 64 << 20  # read at most this much of a refused body, so the client sees the 413


class HttpLayer(ABC):
    """An ASGI layer over HTTP requests; anything else (the lifespan) passes through untouched."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send, header_dict(scope))

    @abstractmethod
    async def handle(self, scope: dict, receive: Any, send: Any, headers: dict[str, str]) -> None:
        """Serve one HTTP request (each layer says what it adds), calling `self.app` to pass it on."""


class RequestContext(HttpLayer):
    """Gives each request an id (`x-request-id`, echoed back), logs it, and refuses bodies over the limit.

    The limit is `max_body_bytes` for multipart uploads and `max_json_bytes` for anything else. An
    oversized body is refused by its Content-Length before it is read; a body without one is counted as
    it streams in. Each part of a body must arrive within `body_timeout` seconds of the previous one.
    """

    def __init__(
        self, app: Any, max_body_bytes: int, max_json_bytes: int, body_timeout: float, metrics: Metrics
    ) -> None:
        super().__init__(app, metrics)
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes
        self.body_timeout = body_timeout

    async def handle(self, scope: dict, receive: Any, send: Any, headers: dict[str, str]) -> None:
        request_id = headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:16]}"
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = [500]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        declared = headers.get("content-length", "")
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        limit = self.max_body_bytes if multipart else self.max_json_bytes
        try:
            if declared.isdigit() and int(declared) > limit:
                self.metrics.record_rejection("request_too_large")
                await self._drain(receive)
                await self._refuse(send_with_id, limit)
            else:
                await self.app(scope, self._limited(receive, limit), send_with_id)
        finally:
            self.metrics.record_response(status[0])
            elapsed = (time.perf_counter() - start) * 1000
            path = scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
            log.info("%s %s %s %d %.1fms", request_id, scope["method"], path, status[0], elapsed)

    def _limited(self, receive: Any, limit: int) -> Any:
        seen = [0]
        complete = [False]

        async def receive_limited() -> dict:
            if complete[0]:  # the body is in: what follows is a disconnect, which may take its time
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                raise BodyTimeout(self.body_timeout) from None  # the app's handler answers 408
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                complete[0] = not message.get("more_body", False)
                if seen[0] > limit:
                    raise BodyTooLarge(limit)  # the app's handler answers 413
            return message

        return receive_limited

    async def _drain(self, receive: Any) -> None:
        """Read (and drop) some of a refused body, so a client still writing it reads the 413 rather than a
        reset connection; bounded in bytes and, per part, in time."""
        read = 0
        with contextlib.suppress(asyncio.TimeoutError):
            while read < DRAIN_LIMIT:
                message = await asyncio.wait_for(receive(), self.body_timeout)
                if message["type"] != "http.request":
                    return
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def _refuse(self, send: Any, limit: int) -> None:
        message = str(BodyTooLarge(limit))
        await send_error(send, 413, message, "request_too_large", [(b"connection", b"close")])
