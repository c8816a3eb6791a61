"""`ditto bench`: time ditto's transformer against diffusers' on this machine, same weights and inputs.

ditto bench --model full-size-random:ltx2 --shape 1280x704x121:1024:2
ditto bench --model /models/LTX-2 --preset record        # the checkpoint's own transformer weights

It runs the benchmark harness of a source checkout (benchmarks/harness/: dev-only, not in the wheel). The
memory a model needs is estimated first: one that would not fit is refused before anything is built.
Reports go to their own folder (./ditto-bench by default), each to a new file.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

from ditto.errors import DittoError
from ditto.pipelines.base import parse_device


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

DEFAULT_OUT = "ditto-bench"

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
    parser.add_argument(
        "--preset", default="quick", choices=sorted(PRESETS), help="which variants to time (default: quick)"
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cuda | cuda:N | cpu (default: cuda when there is one)",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder for the <date>-<gpu>.json report; an existing report is never overwritten (default: "
        f"./{DEFAULT_OUT})",
    )
    parser.add_argument("--profile", action="store_true", help="print a kernel profile of each ditto variant")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.harness.driver import run_benchmark
    from benchmarks.harness.memory import memory_problem
    from benchmarks.harness.specs import spec_for

    spec = spec_for(args.model)
    device = parse_device(args.device)
    problem = memory_problem(spec, device, torch.bfloat16)
    if problem:
        raise DittoError(
            f"{problem}; use a larger machine or a GPU (--device cuda), or a tiny model (--model tiny-ltx2)"
        )
    shapes = [parse_shape(text) for text in args.shape] if args.shape else [spec.default_shape]
    variants = PRESETS[args.preset]
    profile = tuple(v.name for v in variants if v.library == "ditto") if args.profile else ()
    run_benchmark([(spec, shapes)], variants, device, args.out, preset=args.preset, profile=profile)
    return 0
