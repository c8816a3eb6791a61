"""`ditto bench`: time ditto's transformer against diffusers' on this machine, same weights and inputs.

ditto bench --model full-size-random:ltx2 --shape 1280x704x121:1024:2
ditto bench --model /models/LTX-2 --preset record        # the checkpoint's own transformer weights

It runs the benchmark harness of a source checkout (benchmarks/harness/: dev-only, not in the wheel).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch


def find_harness() -> None:
    """Make `benchmarks.harness` importable from a source checkout, wherever `ditto` is started.

    An editable install (or PYTHONPATH=src) puts src/ on the path but not the checkout root beside it;
    the harness is two folders above this file there. Without a checkout the import below fails and
    `ditto bench` says that it needs one (ditto.cli).
    """
    if importlib.util.find_spec("benchmarks") is None:
        checkout = Path(__file__).resolve().parents[2]
        if (checkout / "benchmarks" / "harness" / "__init__.py").is_file():
            sys.path.append(str(checkout))


find_harness()

from benchmarks.harness.presets import PRESETS, parse_shape  # noqa: E402
from benchmarks.harness.specs import SPECS  # noqa: E402


def add_parser(sub: argparse._SubParsersAction) -> None:
    full_size = [f"full-size-random:{name}" for name in SPECS if not name.startswith("tiny")]
    parser = sub.add_parser(
        "bench",
        help="time one transformer forward, ditto vs diffusers (needs diffusers)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help=f"a diffusers checkpoint folder, {' | '.join(full_size)}, or a tiny one "
        f"({', '.join(n for n in SPECS if n.startswith('tiny'))}) for a quick check",
    )
    parser.add_argument(
        "--shape",
        action="append",
        help="WIDTHxHEIGHT[xFRAMES]:TEXT_TOKENS:BATCH (repeatable; default: the model's usual case)",
    )
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="benchmarks/results", help="folder for <date>-<gpu>.json")
    parser.add_argument("--profile", action="store_true", help="print a kernel profile of each ditto variant")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.harness.driver import run_benchmark
    from benchmarks.harness.specs import spec_for

    spec = spec_for(args.model)
    shapes = [parse_shape(text) for text in args.shape] if args.shape else [spec.default_shape]
    variants = PRESETS[args.preset]
    profile = tuple(v.name for v in variants if v.library == "ditto") if args.profile else ()
    run_benchmark(
        [(spec, shapes)], variants, torch.device(args.device), args.out, preset=args.preset, profile=profile
    )
    return 0
