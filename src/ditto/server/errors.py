"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`, for every failure path."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ditto.errors import InvalidParameter

log = logging.getLogger("ditto.server")

# HTTP status -> OpenAI error `type`, as the official API names them.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    409: "invalid_request_error",
    410: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


class APIError(Exception):
    """Raised anywhere under a route; the handler turns it into the error JSON and status."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    @classmethod
    def invalid(cls, exc: InvalidParameter) -> APIError:
        """The engine's own validation message, so HTTP users read exactly what CLI users read."""
        return cls(400, str(exc), param=exc.field, code="invalid_parameter")


class BodyTooLarge(Exception):
    """The request body passed --max-body-mb (raised while it streams in, or up front by Content-Length)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"the request body is larger than this server's limit of {limit_bytes / (1 << 20):g} MiB"
        )


class BodyTimeout(Exception):
    """The client stopped sending its body for longer than the body-read timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g}s of its last part")


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def header_dict(scope: dict) -> dict[str, str]:
    """An ASGI scope's headers by lower-case name (the last one of a repeated name)."""
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}


async def send_error(
    send: Any, status: int, message: str, code: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """An error response sent from an ASGI layer, outside FastAPI's handlers."""
    payload = json.dumps(error_body(status, message, code=code)).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None, headers: Any = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def record_rejection(request: Request, reason: str) -> None:
    state = getattr(request.app.state, "ditto", None)
    if state is not None:
        state.metrics.record_rejection(reason)


def without_paths(message: str, data_dir: Any) -> str:
    """A message for a client: the server's data folder (where uploads are kept) named, not shown."""
    for folder in {str(data_dir), str(Path(data_dir).resolve())}:
        message = message.replace(folder.rstrip("/") + "/", "").replace(folder, "<data>")
    return message


async def _api_error(request: Request, exc: APIError) -> JSONResponse:
    record_rejection(request, exc.code or str(exc.status))
    state = getattr(request.app.state, "ditto", None)
    message = without_paths(exc.message, state.store.data_dir) if state is not None else exc.message
    return error_response(exc.status, message, exc.param, exc.code, exc.headers)


async def _invalid_parameter(request: Request, exc: InvalidParameter) -> JSONResponse:
    return await _api_error(request, APIError.invalid(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    record_rejection(request, "invalid_value")
    return error_response(400, f"{param}: {first.get('msg', 'invalid value')}", param, "invalid_value")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
    record_rejection(request, "request_too_large")
    return error_response(413, str(exc), code="request_too_large")


async def _too_slow(request: Request, exc: BodyTimeout) -> JSONResponse:
    record_rejection(request, "body_timeout")
    return error_response(408, str(exc), code="body_timeout", headers={"Connection": "close"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {exc.__class__.__name__}", code="server_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(InvalidParameter, _invalid_parameter)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(BodyTimeout, _too_slow)
    app.add_exception_handler(Exception, _unexpected)
