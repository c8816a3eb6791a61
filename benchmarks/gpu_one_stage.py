"""LTX-2 one-stage with the official 4-pass guidance, end to end: ditto against diffusers' LTX2Pipeline with the
same guidance, on the same modules, in one process on one GPU (the case no engine publishes).

    PYTHONPATH=src python -m benchmarks.gpu_one_stage --sizes 1280x704x121,768x512x121 --steps 40 --out DIR
    PYTHONPATH=src python -m benchmarks.gpu_one_stage --tiny --device cpu --steps 2 --out DIR   # CPU smoke run

Per size and library: a 2-step warm-up (compiles both pass shapes, the CFG pair and the single passes, and
counts the transformer calls per step: 3 in both, the pair batched), then --repeats timed requests of
--steps steps (median), text encoding to decoded frames and audio. ditto runs
with CUDA graphs (its compile=True default; loops of 10+ steps). Expected on an H200 at 40 steps: about
2 x 140 s at 1280x704x121 and 2 x 55 s at 768x512x121, plus ~2 min of building and compiling; cut with
--steps (the per-step time is printed and extrapolates honestly: text and decode are a fixed ~1 s).
Writes DIR/<date>-<gpu>-one-stage.json after every request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import torch

from benchmarks.harness import one_stage
from benchmarks.harness.driver import current_commit, environment, report_path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1280x704x121,768x512x121", help="comma list of WxHxFRAMES")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--libraries", default="ditto,diffusers")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="ditto without CUDA-graphed passes")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke run; no compile)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    os.environ.setdefault("TQDM_DISABLE", "1")
    started = time.perf_counter()
    report: dict[str, Any] = {**environment(device, args.commit or current_commit(), "one-stage"), "runs": {}}
    out = report_path(args.out, report, "one-stage", args.tiny)

    ditto, reference = one_stage.build_pair(device, dtype, args.tiny)
    compiled = device.type == "cuda" and not args.tiny
    if compiled:
        one_stage.compile_both(ditto, reference, cuda_graphs=not args.no_cuda_graphs)
    report.update(
        build_s=time.perf_counter() - started, steps=args.steps, compiled=compiled,
        cuda_graphs=compiled and not args.no_cuda_graphs, guidance=one_stage.guidance(48),
    )  # fmt: skip
    for text in ["192x128x9"] if args.tiny else args.sizes.split(","):
        size = one_stage.Size.parse(text)
        runs, modules = one_stage.runners(ditto, reference, size), one_stage.transformers(ditto, reference)
        for library in args.libraries.split(","):
            result = one_stage.time_requests(
                runs[library], device, (args.steps,), args.repeats, modules[library]
            )
            report["runs"][f"{size.label()} {library}"] = result
            print(f"[one-stage] {size.label()} {library}: {result}", flush=True)
            out.write_text(json.dumps(report, indent=1, default=str))
        pair = [report["runs"].get(f"{size.label()} {lib}") for lib in ("diffusers", "ditto")]
        if all(pair):
            n = str(args.steps)
            report.setdefault("diffusers / ditto", {})[size.label()] = (
                pair[0]["total_s"][n] / pair[1]["total_s"][n]
            )
    out.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({k: report.get(k) for k in ("runs", "diffusers / ditto")}, indent=1))
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
