"""Whole pipelines end to end on one GPU, full size, random weights, one process.

    PYTHONPATH=src python -m benchmarks.gpu_pipelines --models flux2-klein,ltx2 --out DIR [--commit SHA]
    PYTHONPATH=src python -m benchmarks.gpu_pipelines --tiny --device cpu --out DIR    # CPU smoke run

FLUX.2 Klein 4B, 1024², 4 steps: text encoding (Qwen3-4B), denoising, VAE decode; ditto and diffusers'
Flux2KleinPipeline on the same modules, eager and with the transformer regionally compiled; total =
median of --repeats runs after a warm-up; the split is the per-label median of --repeats more runs with
syncs at module edges.
LTX-2 19B two-stage 768x512x121, CFG 4, --ltx2-steps stage-1 steps: Gemma-3 12B, connectors, stage 1,
x2 upsampler, distilled LoRA (rank 384) beside the weights for stage 2's 3 steps, video and audio decode; one timed
run after a 2-step warm-up. Writes DIR/<date>-<gpu>-pipelines.json after every variant.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import torch

from benchmarks.harness.driver import report_path
from benchmarks.harness.end_to_end import Settings, run_klein, run_ltx2, run_models

RUNNERS = {"flux2-klein": run_klein, "ltx2": run_ltx2}


def header(device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    info: dict[str, Any] = {
        "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
        "commit": args.commit or _commit(), "date": datetime.date.today().isoformat(), "tiny": args.tiny,
        "dtype": args.dtype, "method": "wall clock with device syncs; Klein: median of --repeats runs after a "
        "warm-up, split = per-label median of --repeats more runs with syncs at module edges; LTX-2: one run "
        "after a 2-step warm-up, split in the same run",
    }  # fmt: skip
    try:
        import diffusers
        import transformers

        info.update(diffusers=diffusers.__version__, transformers=transformers.__version__)
    except ImportError:
        pass
    return info


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(report: dict[str, Any]) -> str:
    lines = [f"{'case':12s} {'variant':20s} {'total':>10s}  split (ms)"]
    for model in RUNNERS:
        for name, v in report.get(model, {}).get("variants", {}).items():
            split = ", ".join(f"{k} {ms:.0f}" for k, ms in v["split_ms"].items())
            extra = (
                f" (40 steps extrapolated: {v['extrapolated_40_steps_s']:.2f} s)"
                if "extrapolated_40_steps_s" in v
                else ""
            )
            lines.append(f"{model:12s} {name:20s} {v['total_ms']:8.1f}ms  {split}{extra}")
        if report.get(model, {}).get("ratios"):
            lines.append(f"{model:12s} ratios {report[model]['ratios']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="flux2-klein,ltx2", help=f"comma list of {sorted(RUNNERS)}")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ltx2-steps", type=int, default=40)
    parser.add_argument(
        "--ltx2-repeats", type=int, default=0, help="LTX-2 plain timed runs (median) before the split run"
    )
    parser.add_argument("--only", default="", help="LTX-2: only the variants whose name contains this")
    parser.add_argument("--no-ltx2-eager", action="store_true", help="time LTX-2 compiled only")
    parser.add_argument("--fp8", action="store_true", help="also time ditto compiled with FP8 blocks")
    parser.add_argument(
        "--cuda-graphs",
        choices=("off", "on", "both"),
        default="off",
        help="LTX-2 compiled variants with CUDA-graphed denoising passes: instead (on) or as well (both)",
    )
    parser.add_argument("--no-compile", action="store_true", help="eager variants only (default on cpu)")
    parser.add_argument("--profile", action="store_true", help="kernel summary of the compiled variants")
    parser.add_argument("--budget-s", type=float, default=1e9, help="start no variant after this many s")
    args = parser.parse_args()

    os.environ.setdefault("TQDM_DISABLE", "1")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # not one "kept in float32: []" line per module built
    device = torch.device(args.device)
    from ditto.layers.attention import use_fast_attention

    use_fast_attention(device)  # ditto's attention order, as Engine.from_pretrained sets it (FA3 where built)
    args.dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    settings = Settings(
        device=device, dtype=getattr(torch, args.dtype), tiny=args.tiny,
        compile=not args.no_compile and device.type == "cuda", repeats=args.repeats,
        ltx2_steps=args.ltx2_steps, ltx2_eager=not args.no_ltx2_eager, fp8=args.fp8, profile=args.profile, graphs=args.cuda_graphs, ltx2_repeats=args.ltx2_repeats, only=args.only,
        deadline=time.perf_counter() + args.budget_s,
    )  # fmt: skip
    report = header(device, args)
    out = report_path(args.out, report, "pipelines", args.tiny)

    def save() -> None:
        out.write_text(json.dumps(report, indent=1, default=str))

    run_models(RUNNERS, args.models.split(","), settings, report, save)
    print(table(report))
    print(f"wrote {out}")
    return 1 if report.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
