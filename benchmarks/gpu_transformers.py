"""ditto's native transformers against diffusers' on one GPU: same random weights, same inputs, one process.

    PYTHONPATH=src python benchmarks/gpu_transformers.py --models ltx2 --out DIR [--commit SHA]

Per model: diffusers' model is built once on the GPU (bf16, N(0, 0.02) weights), ditto's model takes the
same parameter tensors (no second copy), and each variant is timed (CUDA events, 2 warm-ups, median of 5)
with parity against diffusers eager. Writes DIR/<date>-<gpu>.json after every variant and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

from ditto.benchmarking.measure import Variant, add_ratios, run_case, table
from ditto.benchmarking.specs import SPECS, Shape

CUDNN_FIRST = ("cudnn", "flash", "efficient", "math")
FA4_FIRST = ("fa4", *CUDNN_FIRST)  # FlashAttention-4 where its package loads; SDPA for masked calls

PRESETS: dict[str, list[Variant]] = {
    # The full ablation: what each step of the speed work buys.
    "ablation": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager-torch-default-attn", "ditto", attention=None, quick=True),
        Variant("ditto-eager-cudnn", "ditto", attention=CUDNN_FIRST, quick=True),
        Variant("ditto-eager-cudnn-fused", "ditto", fused=True, attention=CUDNN_FIRST),
        Variant("ditto-compiled-cudnn-fused", "ditto", compile=True, fused=True, attention=CUDNN_FIRST),
    ],
    # Compiled only: fused projections on/off (parity and eager figures come from the first call).
    "compiled": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-compiled-unfused", "ditto", compile=True, attention=CUDNN_FIRST),
        Variant("ditto-compiled", "ditto", compile=True, fused=True, attention=CUDNN_FIRST),
    ],
    # The table of record: both libraries eager and compiled; ditto with cuDNN attention and with FlashAttention-4.
    "record": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager", "ditto", attention=CUDNN_FIRST),
        Variant("ditto-compiled", "ditto", compile=True, attention=CUDNN_FIRST),
        Variant("ditto-eager-fa4", "ditto", attention=FA4_FIRST, quick=True),
        Variant("ditto-compiled-fa4", "ditto", compile=True, attention=FA4_FIRST),
    ],
    # Image models: fused projections matter more at 4,096 tokens (no FA4 variants).
    "images": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager", "ditto", attention=CUDNN_FIRST),
        Variant("ditto-compiled", "ditto", compile=True, attention=CUDNN_FIRST),
        Variant("ditto-compiled-fused", "ditto", compile=True, fused=True, attention=CUDNN_FIRST),
    ],
}


def parse_shape(text: str) -> Shape:
    """WIDTHxHEIGHT[xFRAMES]:TEXT:BATCH, e.g. 1280x704x121:1024:2."""
    size, text_tokens, batch = text.split(":")
    dims = [int(v) for v in size.split("x")]
    return Shape(dims[1], dims[0], dims[2] if len(dims) > 2 else 1, int(text_tokens), int(batch))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="ltx2", help=f"comma list of {sorted(SPECS)}")
    parser.add_argument("--shapes", action="append", help="MODEL=WxH[xF]:TEXT:BATCH (repeatable)")
    parser.add_argument("--preset", default="ablation", choices=sorted(PRESETS))
    parser.add_argument("--profile", default="diffusers-compiled,ditto-compiled,ditto-compiled-fa4")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--budget-s", type=float, default=1e9, help="start no new model after this many s")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    shapes: dict[str, list[Shape]] = {}
    for item in args.shapes or []:
        model, shape = item.split("=")
        shapes.setdefault(model, []).append(parse_shape(shape))
    date = datetime.date.today().isoformat()
    out = Path(args.out) / f"{date}-{gpu.replace(' ', '-').replace('/', '-')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python": sys.version.split()[0], "commit": args.commit, "date": date, "preset": args.preset,
        "method": "CUDA events; first call + 1 warm-up, median of 5 (quick ablations: 1 + 3); bf16; "
        "weights N(0, 0.02) shared by both models; parity vs diffusers eager on the same inputs",
    }  # fmt: skip
    try:
        import diffusers

        header["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    reports: list[dict] = []
    started = time.perf_counter()

    def save(report: dict | None = None) -> None:
        for r in reports + ([report] if report and report not in reports else []):
            add_ratios(r)
        current = reports + ([report] if report and report not in reports else [])
        out.write_text(json.dumps({**header, "cases": current}, indent=1))

    profile = tuple(args.profile.split(",")) if args.profile else ()
    for name in args.models.split(","):
        if time.perf_counter() - started > args.budget_s:
            print(f"skipping {name}: over the {args.budget_s:.0f} s budget", flush=True)
            continue
        spec = SPECS[name]
        case_shapes = shapes.get(name) or [spec.default_shape]
        report = run_case(
            spec, case_shapes, PRESETS[args.preset], device, profile_variants=profile, on_update=save,
            log=lambda line: print(line, flush=True),
        )  # fmt: skip
        reports.append(report)
        save()
    print(table(reports))
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
