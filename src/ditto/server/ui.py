"""The web playground at `/`: static files shipped in the package (ui/: plain HTML, CSS and JavaScript, no
build step, nothing fetched from elsewhere). The page holds no secret and talks to the server only through
the public API (the OpenAI routes, /v1/jobs and /v1/fields), so it is served without a key; with keys on,
the page asks for one and sends it like any client. `ditto serve --no-ui` leaves these routes out."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ditto.server.errors import APIError

UI_DIR = Path(__file__).with_name("ui")
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Only this server's own files and the media the page makes from its answers (blob: URLs); no inline script.
POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
UI_PATHS = ("/", "/ui/")  # the page and its files: open without a key (guard.py)

router = APIRouter(include_in_schema=False)


def ui_file(name: str) -> FileResponse:
    path = UI_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise APIError(404, f"no page file {name!r}", code="not_found")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("/")
async def page() -> FileResponse:
    return ui_file("index.html")


@router.get("/ui/{name}")
async def page_file(name: str) -> FileResponse:
    return ui_file(name)
