"""Offload on one GPU, full size, random weights: each pipeline resident and within memory budgets.

    PYTHONPATH=src python -m benchmarks.gpu_offload --out DIR [--fp8] [--budgets 24GiB,48GiB] [--qwen-budgets 24GiB]
    PYTHONPATH=src python -m benchmarks.gpu_offload --tiny --device cpu --budgets min --qwen-budgets min --out DIR

LTX-2 19B two-stage 768x512x121, CFG 4, 40 steps (extrapolated from --ltx2-steps), and Qwen-Image 20B 1024^2
with true CFG, 50 steps (from --qwen-steps): each timed resident (compiled, CUDA graphs on where the loops
allow), then with `max_gpu_memory` at each budget, the budget enforced by
torch.cuda.set_per_process_memory_fraction; with --fp8 all of it again with FP8 blocks. The report has, per
run, the residency plan, stage times, the device's peak per stage (read from the allocator), the bytes moved
host -> device per request, the time ratio to resident and the verdict against issue 25's targets (peak
within the budget; <= 3.0x resident at 24 GiB, <= 1.5x at 48 GiB). Writes DIR/<date>-<gpu>-offload.json after
every run. Expected on one H200 with --fp8: about 6 minutes, LTX-2 ~4.5 (built in ~20 s, compiled twice:
bf16 then FP8 blocks, ~1 min each; weights moved to page-locked host memory twice, ~15 s each; 3 runs per
variant) and Qwen-Image ~1.5; `--models ltx2` / `--models qwen-image` split it into two calls, and
--no-compile or fewer budgets cut it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import torch

from benchmarks.gpu_pipelines import header
from benchmarks.harness.driver import report_path
from benchmarks.harness.end_to_end import run_models
from benchmarks.harness.offload_runs import (
    Case,
    OffloadSettings,
    ltx2_request,
    offload_variants,
    qwen_request,
)

TINY_LTX2_LAYERS = 6  # enough blocks that a small budget streams some (two would all fit in the stream slots)


def run_ltx2(settings: OffloadSettings, report: dict[str, Any], save: Any) -> None:
    from benchmarks.harness.full_size_ltx2 import build_ltx2

    started = time.perf_counter()
    pipe = build_ltx2(settings.device, settings.dtype, settings.tiny, tiny_layers=TINY_LTX2_LAYERS)
    request = lambda steps: ltx2_request(settings, steps)  # noqa: E731
    case = Case("ltx2", request, "denoise_stage_1", settings.ltx2_steps, 40, settings.ltx2_budgets)
    _run_model(pipe, settings, case, report, save, time.perf_counter() - started)


def run_qwen(settings: OffloadSettings, report: dict[str, Any], save: Any) -> None:
    from benchmarks.harness.full_size_qwen import build_qwen_image

    started = time.perf_counter()
    pipe = build_qwen_image(settings.device, settings.dtype, settings.tiny)
    request = lambda steps: qwen_request(settings, steps)  # noqa: E731
    case = Case("qwen-image", request, "denoise", settings.qwen_steps, 50, settings.qwen_budgets)
    _run_model(pipe, settings, case, report, save, time.perf_counter() - started, fp8_budgets=False)


def _run_model(
    pipe: Any,
    settings: OffloadSettings,
    case: Case,
    report: dict[str, Any],
    save: Any,
    build_s: float,
    fp8_budgets: bool = True,
) -> None:
    """bf16 resident and budgets; then (--fp8) the blocks quantized on the device and the same again."""
    from ditto.acceleration.fp8 import quantize_transformer
    from ditto.engine import compile_pipeline, enable_cuda_graphs

    section = report.setdefault(case.model, {"model": case.model, "variants": {}})
    section.update(
        build_s=build_s, request=case.request(case.full), timed_steps=case.steps, full_steps=case.full
    )
    if settings.compile:
        compile_pipeline(pipe)  # as compile=True does; the offloaded runs reuse the same graphs
        enable_cuda_graphs(pipe, None, compiled=True)
    if settings.bf16 or not fp8_budgets:
        offload_variants(pipe, settings, case, section, save, "bf16")
    if settings.fp8 and fp8_budgets:
        quantize_transformer(pipe.components.transformer, keep_originals=False)
        offload_variants(pipe, settings, case, section, save, "fp8")
    save()


RUNNERS = {"ltx2": run_ltx2, "qwen-image": run_qwen}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="ltx2,qwen-image", help=f"comma list of {sorted(RUNNERS)}")
    parser.add_argument(
        "--budgets", default="24GiB,48GiB", help='LTX-2: comma list of sizes, or "min" (the smallest)'
    )
    parser.add_argument(
        "--qwen-budgets", default="24GiB", help="Qwen-Image: comma list of sizes (the issue's case: 24GiB)"
    )
    parser.add_argument("--fp8", action="store_true", help="also FP8 blocks (LTX-2), after the bf16 runs")
    parser.add_argument("--fp8-only", action="store_true", help="LTX-2: the FP8 runs alone (no bf16 ones)")
    parser.add_argument("--ltx2-steps", type=int, default=8, help="timed stage-1 steps (extrapolated to 40)")
    parser.add_argument("--qwen-steps", type=int, default=8, help="timed denoise steps (extrapolated to 50)")
    parser.add_argument("--no-compile", action="store_true", help="eager (default on cpu)")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU proof run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default=None)
    parser.add_argument("--budget-s", type=float, default=1e9, help="start no budget run after this many s")
    args = parser.parse_args()

    os.environ.setdefault("TQDM_DISABLE", "1")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # not one "kept in float32: []" line per module built
    device = torch.device(args.device)
    args.dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    settings = OffloadSettings(
        device=device, dtype=getattr(torch, args.dtype), tiny=args.tiny,
        compile=not args.no_compile and device.type == "cuda", ltx2_budgets=tuple(args.budgets.split(",")),
        qwen_budgets=tuple(args.qwen_budgets.split(",")),
        fp8=args.fp8 or args.fp8_only, bf16=not args.fp8_only, ltx2_steps=args.ltx2_steps, qwen_steps=args.qwen_steps,
        deadline=time.perf_counter() + args.budget_s,
    )  # fmt: skip
    report = header(device, args)
    out = report_path(args.out, report, "offload", args.tiny)

    def save() -> None:
        out.write_text(json.dumps(report, indent=1, default=str))

    run_models(RUNNERS, args.models.split(","), settings, report, save)
    print(f"wrote {out}")
    return 1 if report.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
