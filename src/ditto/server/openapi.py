"""The OpenAPI document (/openapi.json, /docs, /redoc): FastAPI's, plus the request body of each generation
route from the served family's request models (the routes read their bodies themselves, to check the
media type and to parse JSON strictly, so FastAPI cannot infer them)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ditto.server.params import JSON, MULTIPART
from ditto.server.schemas import RequestModels

# (path, method) -> (the RequestModels attribute, media types, the form's file fields)
ROUTE_BODIES = {
    ("/v1/images/generations", "post"): ("image", (JSON,), ()),
    ("/v1/images/edits", "post"): ("edit", (MULTIPART,), ("image",)),
    ("/v1/videos", "post"): ("video", (JSON, MULTIPART), ("input_reference",)),
}


def _files_schema(files: tuple[str, ...]) -> dict[str, Any]:
    binary = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {"type": "object", "properties": {name: binary for name in files}}


def install_openapi(app: FastAPI, models: RequestModels, description: str) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for (path, method), (name, media_types, files) in ROUTE_BODIES.items():
            model = getattr(models, name)
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
            ref = {"$ref": f"#/components/schemas/{model.__name__}"}
            content = {}
            for media in media_types:
                with_files = media == MULTIPART and files
                content[media] = {"schema": {"allOf": [ref, _files_schema(files)]} if with_files else ref}
            operation = schema["paths"][path][method]
            operation["requestBody"] = {"required": True, "content": content}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
