"""`ditto serve`: bind the port, lock the data folder, load one model, then serve it over OpenAI's images and
videos APIs under uvicorn. A taken port or a held folder is one error line, before anything is loaded or
changed."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import socket
from pathlib import Path
from typing import Any

from ditto.errors import DittoError
from ditto.server.limits import Limits
from ditto.server.retention import DEFAULT_MAX_AGE_HOURS, DEFAULT_MAX_STORE_GB
from ditto.server.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_QUEUE

log = logging.getLogger("ditto.server")

# Limit flags: (flag, dest, type, help). Unset, each is the served family's default (server/limits.py).
LIMIT_FLAGS = (
    ("--max-steps", "max_steps", int, "denoising steps per request"),
    ("--max-pixels", "max_pixels", int, "output width x height"),
    ("--max-frames", "max_frames", int, "video frames"),
    ("--max-seconds", "max_seconds", float, "video length in seconds"),
    ("--max-prompt-bytes", "max_prompt_bytes", int, "UTF-8 bytes of each prompt"),
    ("--max-prompt-tokens", "max_prompt_tokens", int, "tokens of each prompt (the model's tokenizer)"),
    ("--max-images", "max_images", int, "images made (n) or uploaded per request"),
    ("--max-upload-mb", "max_upload_mb", float, "MiB of each uploaded file"),
    ("--max-upload-pixels", "max_upload_pixels", int, "decoded pixels of each uploaded image"),
    ("--job-timeout", "job_timeout_s", float, "seconds one job may run before it is stopped"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API")
    parser.add_argument("--model", default="tiny-ltx2", help="checkpoint folder, or a tiny model name")
    parser.add_argument("--served-model-name", help="the name clients use (default: --model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=30010, help="(default: %(default)s)")
    parser.add_argument(
        "--data-dir", default="ditto-data", help="job database and outputs, locked while served (default: ./ditto-data)"
    )  # fmt: skip
    parser.add_argument(
        "--config",
        help="JSON or YAML file of these flags' values (keys as the flags, with underscores: max_steps, "
        "api_keys_file, ...); flags given on the command line win",
    )
    add_queue_flags(parser)
    add_access_flags(parser)
    add_page_flags(parser)
    limits = parser.add_argument_group("limits per request (default: the model family's; see the README)")
    for flag, dest, kind, help in LIMIT_FLAGS:
        limits.add_argument(flag, dest=dest, type=kind, help=help, metavar="N")
    from ditto.cli import add_engine_flags  # here: ditto.cli imports this module

    add_engine_flags(parser)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=run_serve, serve_parser=parser)


def add_queue_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("queue, storage and connections")
    group.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help="jobs that may wait; beyond it requests get 429 (default: %(default)s)",
    )
    group.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY_BYTES / (1 << 20),
        help="largest multipart body (uploads) in MiB; beyond it 413 (default: %(default)s)",
    )
    group.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="seconds SIGTERM waits for the running job before stopping it (default: %(default)s)",
    )
    group.add_argument(
        "--max-attempts",
        type=int,
        default=2,
        help="starts of a job that crashes may interrupt before it is failed (default: %(default)s)",
    )
    group.add_argument(
        "--retention-hours",
        type=float,
        default=DEFAULT_MAX_AGE_HOURS,
        help="finished jobs' files are deleted after this age (default: %(default)s)",
    )
    group.add_argument(
        "--retention-gb",
        type=float,
        default=DEFAULT_MAX_STORE_GB,
        help="and, oldest first, while the store is larger (default: %(default)s GiB)",
    )
    group.add_argument(
        "--strict-size",
        action="store_true",
        help="refuse a size the model cannot make instead of snapping it to the nearest",
    )
    group.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the next part of a request body; then 408 (default: %(default)s)",
    )
    group.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a connection may take to send a request's headers (default: %(default)s)",
    )
    group.add_argument("--max-connections", type=int, default=256,
                       help="open connections; beyond it 503 (default: %(default)s)")  # fmt: skip


def add_access_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("access")
    group.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="a key clients must send (repeatable; also the DITTO_API_KEY variable)",
    )
    group.add_argument("--api-keys-file", metavar="FILE", help="keys, one a line ('#' comments)")
    group.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients may use besides loopback names and --host ('*': any)",
    )
    group.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="a browser origin allowed to call the API (CORS is off without one)")  # fmt: skip


def add_page_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("web page and previews")
    group.add_argument("--no-ui", dest="ui", action="store_false",
                       help="serve no web page at / (the API only)")  # fmt: skip
    group.add_argument(
        "--preview-every",
        type=int,
        default=0,
        metavar="N",
        help="a latent preview every N steps for requests that do not say (their preview_every field; "
        "GET /v1/jobs/{id}/preview); 0: none (default: %(default)s; the web page asks for its own)",
    )


def apply_config(args: argparse.Namespace) -> None:
    """Values from --config for every flag left at its default (the command line wins)."""
    if not args.config:
        return
    path = Path(args.config)
    try:
        text = path.read_text()
        values = json.loads(text) if path.suffix == ".json" else _yaml(text)
    except (OSError, ValueError) as exc:
        raise DittoError(f"--config {path}: cannot read it ({exc})") from None
    if not isinstance(values, dict):
        raise DittoError(f"--config {path}: must hold a mapping of flag names to values")
    defaults = {action.dest: action.default for action in args.serve_parser._actions}
    for key, value in values.items():
        dest = key.replace("-", "_")
        if dest not in defaults or dest in ("help", "config"):
            raise DittoError(f"--config {path}: {key!r} is not a flag of ditto serve")
        if isinstance(defaults[dest], list) and isinstance(value, str):
            value = [value]  # a repeatable flag given once
        if getattr(args, dest) == defaults[dest]:
            setattr(args, dest, value)


def _yaml(text: str) -> Any:
    import yaml  # PyYAML comes with transformers

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None


def build_settings(args: argparse.Namespace, family: str | None = None) -> Any:
    from ditto.server.guard import Access, read_keys
    from ditto.server.retention import Retention
    from ditto.server.settings import ServerSettings

    given = {dest: getattr(args, dest) for _, dest, _, _ in LIMIT_FLAGS}
    upload_mb = given.pop("max_upload_mb")
    given["max_upload_bytes"] = int(upload_mb * (1 << 20)) if upload_mb is not None else None
    if args.preview_every < 0:
        raise DittoError(f"--preview-every {args.preview_every}: must be 0 (none) or a number of steps")
    keys = read_keys(args.api_key, args.api_keys_file)
    if not keys and not is_loopback(args.host):
        raise DittoError(
            f"--host {args.host}: without API keys ditto serve listens on loopback only; give --api-key, "
            "--api-keys-file or DITTO_API_KEY to serve other machines"
        )
    return ServerSettings(
        max_queue=args.max_queue,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        shutdown_grace=args.shutdown_grace,
        limits=Limits.for_family(family or "", **given) if family else None,
        retention=Retention(args.retention_hours * 3600, int(args.retention_gb * (1 << 30))),
        access=Access.build(keys, args.host, args.allowed_host, args.cors_origin),
        strict_size=args.strict_size,
        max_attempts=args.max_attempts,
        body_timeout_s=args.body_timeout,
        header_timeout_s=args.header_timeout,
        preview_every=args.preview_every,
        ui=args.ui,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before the model loads, so a taken port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise DittoError(
            f"cannot listen on {host}:{port}: {exc.strerror}; is another server on it? (--port)"
        ) from None
    return sock


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ditto.cli import engine_options
    from ditto.engine import Engine
    from ditto.parallel.launch import torchrun_rank
    from ditto.server.app import create_app
    from ditto.server.datadir import DataDirLock
    from ditto.server.protocol import with_header_timeout

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    apply_config(args)
    build_settings(args)  # every flag checked before anything is taken
    if torchrun_rank() > 0:  # a torchrun rank other than 0: rank 0 serves; this one runs its requests with it
        return follow_rank_zero(args)
    sock = bind(args.host, args.port)  # first: a taken port leaves the data folder untouched
    lock = DataDirLock(args.data_dir).acquire()
    if not read_keys_given(args):
        log.info(
            "no API keys: listening on loopback %s:%d only, every client is trusted", args.host, args.port
        )
    options = engine_options(args)  # --cache: the step cache of requests that name none
    engine = Engine.from_pretrained(args.model, device=args.device, dtype=args.dtype, options=options)
    settings = build_settings(args, engine.family)
    app = create_app(engine, Path(args.data_dir), args.served_model_name or str(args.model), settings, lock)
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,  # the request-id middleware logs every request
        timeout_graceful_shutdown=int(args.shutdown_grace) + 1,
        limit_concurrency=args.max_connections,
        http=with_header_timeout(args.header_timeout),
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        engine.close()  # a parallel engine's other processes stop with the server
    return 0


def follow_rank_zero(args: argparse.Namespace) -> int:
    """No socket, no data folder: load the same engine and run rank 0's calls until it stops."""
    from ditto.cli import engine_options
    from ditto.engine import Engine

    engine = Engine.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, options=engine_options(args)
    )
    engine.follow()
    engine.close()
    return 0


def read_keys_given(args: argparse.Namespace) -> bool:
    from ditto.server.guard import read_keys

    return bool(read_keys(args.api_key, args.api_keys_file))
