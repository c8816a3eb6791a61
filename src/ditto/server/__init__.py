"""OpenAI-compatible HTTP server: a FIFO job queue in front of one Engine, with an on-disk job store.

`create_app(engine, data_dir)` builds the FastAPI app; `ditto serve` runs it under uvicorn.
"""

from ditto.server.app import create_app

__all__ = ["create_app"]
