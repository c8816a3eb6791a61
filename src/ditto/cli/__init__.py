"""The `ditto` command: generate | make-tiny | serve | bench | convert. Thin: parse, call the Engine, print.

Layout: parser.py (one-line errors, "did you mean"), flags.py (flags from the request-field and engine-option
tables), generate.py, config_file.py (--config), outputs.py (output names), make_tiny.py.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

from ditto import __version__
from ditto.cli.flags import add_engine_flags, add_request_flags, engine_options, generate_kwargs
from ditto.cli.generate import add_generate
from ditto.cli.make_tiny import add_make_tiny
from ditto.cli.parser import DittoArgumentParser
from ditto.errors import DittoError

__all__ = [
    "add_engine_flags",
    "add_request_flags",
    "build_parser",
    "engine_options",
    "generate_kwargs",
    "main",
]

DESCRIPTION = """Run and serve diffusion transformers (LTX-2 / LTX-2.3, FLUX.2 Klein, Qwen-Image).

  ditto generate --prompt "a red fox in the snow"       # a new MP4 in outputs/ (tiny-ltx2: noise)
  ditto generate --model DIR --config request.yaml --seed 7
  ditto COMMAND --help                                   # every flag of a command"""

# Subcommands whose code lives in its own module (each adds its own parser), possibly absent from a build:
# (name, module, one line for `ditto --help`). Importing one costs seconds (torch, fastapi), so only the
# command being run is imported; the others are listed by name and line.
OPTIONAL = (
    ("serve", "ditto.server.cli", "serve a model over an OpenAI-compatible HTTP API"),
    ("bench", "ditto.bench", "time one transformer forward, ditto vs diffusers (needs diffusers)"),
    ("convert", "ditto.loading.convert_cli", "official LTX-2 single file <-> diffusers folder"),
)


def build_parser(command: str | None = "*") -> DittoArgumentParser:
    """The whole parser; `command`: the subcommand about to run, the only optional one imported ("*":
    import them all, None: none, as for `ditto --help`)."""
    parser = DittoArgumentParser(
        prog="ditto", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ditto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_generate(sub)
    add_make_tiny(sub)
    for name, target, help in OPTIONAL:
        if command not in ("*", name):
            sub.add_parser(name, help=help, add_help=False)  # listed; never run (main imports what it runs)
            continue
        try:
            add_optional(sub, target)
        except ModuleNotFoundError as exc:
            if exc.name == target:
                continue  # the subcommand is not part of this build
            if (exc.name or "").startswith("ditto"):
                raise
            add_unavailable(sub, name, exc.name or "a package")
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is not a flag), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def add_optional(sub: argparse._SubParsersAction, target: str) -> None:
    import importlib

    importlib.import_module(target).add_parser(sub)


def add_unavailable(sub: argparse._SubParsersAction, name: str, missing: str) -> None:
    """A subcommand whose package is missing: `generate` still works, `name` says why not."""
    if missing.startswith("benchmarks"):  # the dev-only harness beside src/, never installed
        needs, fix = "a source checkout", "run it from a clone of the ditto repository (benchmarks/harness/)"
    else:
        needs, fix = f"the package {missing!r}", "install ditto with its dependencies"

    def handler(args: argparse.Namespace) -> int:
        raise DittoError(f"`ditto {name}` needs {needs}; {fix}")

    # prefix_chars="+": every word after the name, "--model" too, is swallowed as a positional.
    parser = sub.add_parser(name, help=f"(unavailable: needs {needs})", add_help=False, prefix_chars="+")
    parser.add_argument("rest", nargs="*", help="ignored")
    parser.set_defaults(handler=handler)


def main(argv: Sequence[str] | None = None) -> int:
    """The program (`argv` None: the command line), or one command run in-process (tests)."""
    program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_in(argv)).parse_args(argv)
    try:
        return args.handler(args)
    except DittoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if program:
            # The interpreter's last garbage collection walks every object torch and diffusers made: over
            # a second of exit after the timing line (1.3 s -> 0.3 s on 2 cores). Refcounting still frees
            # them; only an in-process caller, who may go on working, keeps its collections.
            gc.freeze()
