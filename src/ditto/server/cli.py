"""`ditto serve`: load one model, then serve it over OpenAI's images/videos APIs under uvicorn."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ditto.server.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_QUEUE


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API")
    parser.add_argument("--model", default="tiny-ltx2", help="checkpoint folder, or a tiny model name")
    parser.add_argument("--served-model-name", help="the name clients use (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30010)
    parser.add_argument(
        "--data-dir", default="ditto-data", help="job database and outputs (default: ./ditto-data)"
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help="jobs that may wait; beyond it requests get 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY_BYTES / (1 << 20),
        help="largest request body (uploads) in MiB; beyond it 413 (default: %(default)s)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="seconds SIGTERM waits for the running job before stopping it (default: %(default)s)",
    )
    from ditto.cli import add_engine_flags  # here: ditto.cli imports this module

    add_engine_flags(parser)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ditto.cli import engine_options
    from ditto.engine import Engine
    from ditto.server.app import create_app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = engine_options(args)  # --cache: the step cache of requests that name none
    engine = Engine.from_pretrained(args.model, device=args.device, dtype=args.dtype, options=options)
    if not engine.leads:  # a torchrun rank other than 0: rank 0 serves, this rank runs its requests with it
        engine.follow()
        engine.close()
        return 0
    app = create_app(
        engine,
        Path(args.data_dir),
        model_name=args.served_model_name or str(args.model),
        max_queue=args.max_queue,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        shutdown_grace=args.shutdown_grace,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # the request-id middleware logs every request
        timeout_graceful_shutdown=int(args.shutdown_grace) + 1,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        engine.close()  # a parallel engine's other processes stop with the server
    return 0
