"""`ditto bench`: time ditto's transformer against diffusers' on this machine, same weights and inputs.

ditto bench --model full-size-random:ltx2 --shape 1280x704x121:1024:2
ditto bench --model /models/LTX-2 --preset record        # the checkpoint's own transformer weights
"""

from __future__ import annotations

import argparse

import torch

from ditto.benchmarking.presets import PRESETS, parse_shape
from ditto.benchmarking.specs import SPECS


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
    from ditto.benchmarking.driver import run_benchmark
    from ditto.benchmarking.specs import spec_for

    spec = spec_for(args.model)
    shapes = [parse_shape(text) for text in args.shape] if args.shape else [spec.default_shape]
    variants = PRESETS[args.preset]
    profile = tuple(v.name for v in variants if v.library == "ditto") if args.profile else ()
    run_benchmark(
        [(spec, shapes)], variants, torch.device(args.device), args.out, preset=args.preset, profile=profile
    )
    return 0
