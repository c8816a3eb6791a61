"""One ASGI layer in front of every route: request id, access log, body-size limit (413)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from ditto.server.errors import BodyTooLarge, error_body
from ditto.server.metrics import Metrics

log = logging.getLogger("ditto.server.http")

DRAIN_LIMIT = 256 << 20  # read (and drop) at most this much of a refused body, so the client sees the 413


class RequestContext:
    """Gives each request an id (`x-request-id`, echoed back), logs it, and refuses bodies over the limit.

    An oversized body is refused by its Content-Length before it is read; a body without one is counted
    as it streams in.
    """

    def __init__(self, app: Any, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
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
        try:
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await _drain(receive)
                await self._refuse(send_with_id)
            else:
                await self.app(scope, self._limited(receive), send_with_id)
        finally:
            self.metrics.record_response(status[0])
            elapsed = (time.perf_counter() - start) * 1000
            path = scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
            log.info("%s %s %s %d %.1fms", request_id, scope["method"], path, status[0], elapsed)

    def _limited(self, receive: Any) -> Any:
        seen = [0]

        async def receive_limited() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)  # the app's handler answers 413
            return message

        return receive_limited

    async def _refuse(self, send: Any) -> None:
        body = error_body(413, str(BodyTooLarge(self.max_body_bytes)), code="request_too_large")
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _drain(receive: Any) -> None:
    read = 0
    while read < DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
