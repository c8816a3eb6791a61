"""ditto's native transformers against diffusers' on one GPU: same weights, same inputs, one process.

    PYTHONPATH=src python -m benchmarks.gpu_transformers --models ltx2 --preset record --out DIR

Per model: diffusers' model is built once on the GPU (bf16, N(0, 0.02) weights), ditto's model takes the
same parameter tensors (no second copy), and each variant is timed (CUDA events, warm-up, median of 5)
with parity against diffusers eager. Writes DIR/<date>-<gpu>.json after every variant and prints a table.
`ditto bench` runs the same measurement for one model.
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmarks.harness.driver import run_benchmark
from benchmarks.harness.presets import PRESETS, parse_shape
from benchmarks.harness.specs import SPECS, Shape


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="ltx2", help=f"comma list of {sorted(SPECS)}")
    parser.add_argument("--shapes", action="append", help="MODEL=WxH[xF]:TEXT:BATCH (repeatable)")
    parser.add_argument("--preset", default="record", choices=sorted(PRESETS))
    parser.add_argument("--profile", default="diffusers-compiled,ditto-compiled,ditto-compiled-fa4")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", help="recorded in the JSON (default: git rev-parse HEAD)")
    parser.add_argument("--budget-s", type=float, default=1e9, help="start no new model after this many s")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    shapes: dict[str, list[Shape]] = {}
    for item in args.shapes or []:
        model, shape = item.split("=")
        shapes.setdefault(model, []).append(parse_shape(shape))
    cases = [
        (SPECS[name], shapes.get(name) or [SPECS[name].default_shape]) for name in args.models.split(",")
    ]
    run_benchmark(
        cases, PRESETS[args.preset], torch.device(args.device), args.out, preset=args.preset,
        commit=args.commit, profile=tuple(filter(None, args.profile.split(","))), budget_s=args.budget_s,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
