"""The matrix products of LTX-2, FLUX.2 Klein and Qwen-Image in bf16 and in FP8 (one GPU, one process).

    PYTHONPATH=src python -m benchmarks.gpu_fp8_gemm --out DIR

Per shape (tokens x in -> out): bf16 `F.linear`, and ditto's `Fp8Linear` with rowwise and tensorwise
scales, both as the raw `torch._scaled_mm` (inputs already in FP8) and as the whole layer under
torch.compile (the input's amax, scale and cast included; for products this small the compiled call's host
overhead shows in its time too). CUDA events, median of 20 after warm-up.
Writes DIR/<date>-<gpu>-fp8-gemm.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.harness.driver import current_commit
from benchmarks.harness.measure import time_ms as event_times
from ditto.acceleration.fp8 import Fp8Linear, quantize_tensor

# (label, tokens, in, out): LTX-2 stage 1 (2 x 1,536 video tokens) and 1280x704 (2 x 14,080), the FFN
# and attention projections; Klein/Qwen 1024^2 (4,096 image tokens).
SHAPES = [
    ("ltx2 stage1 qkvo", 3072, 4096, 4096),
    ("ltx2 stage1 ff up", 3072, 4096, 16384),
    ("ltx2 stage1 ff down", 3072, 16384, 4096),
    ("ltx2 1280 qkvo", 28160, 4096, 4096),
    ("ltx2 1280 ff up", 28160, 4096, 16384),
    ("ltx2 1280 ff down", 28160, 16384, 4096),
    ("qwen img ff up", 4096, 3072, 12288),
    ("klein single fused", 4608, 3072, 27648),
]


def time_ms(fn, repeats: int = 20) -> float:
    """Median CUDA-event milliseconds after 3 warm-up calls (the harness's timer)."""
    return statistics.median(event_times(fn, torch.device("cuda"), 3, repeats))


@torch.inference_mode()
def measure(tokens: int, k: int, n: int) -> dict[str, float]:
    device = torch.device("cuda")
    linear = nn.Linear(k, n, device=device, dtype=torch.bfloat16)
    x = torch.randn(tokens, k, device=device, dtype=torch.bfloat16)
    flop = 2 * tokens * k * n
    row: dict[str, float] = {"bf16": time_ms(lambda: F.linear(x, linear.weight, linear.bias))}
    for scaling in ("rowwise", "tensorwise"):
        layer = Fp8Linear(linear, scaling)
        x_fp8, x_scale = quantize_tensor(x, scaling)

        def raw(layer: Fp8Linear = layer, x_fp8: torch.Tensor = x_fp8, x_scale: torch.Tensor = x_scale):
            return torch._scaled_mm(
                x_fp8, layer.weight_fp8.t(), scale_a=x_scale, scale_b=layer.weight_scale,
                bias=layer.bias, out_dtype=torch.bfloat16,
            )  # fmt: skip

        row[f"fp8_{scaling}_mm"] = time_ms(raw)
        torch._dynamo.reset()  # one Fp8Linear.forward code object: each shape would count as a recompile
        compiled = torch.compile(layer, fullgraph=True, dynamic=False)
        row[f"fp8_{scaling}_layer_compiled"] = time_ms(lambda c=compiled: c(x))
    return {**row, **{f"{key}_tflops": flop / (ms * 1e-3) / 1e12 for key, ms in list(row.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", help="recorded in the JSON (default: git rev-parse HEAD)")
    args = parser.parse_args()
    results = []
    for label, tokens, k, n in SHAPES:
        row = {"label": label, "tokens": tokens, "in": k, "out": n, **measure(tokens, k, n)}
        results.append(row)
        print(
            f"{label:22s} {tokens:6d}x{k:5d}->{n:5d}  bf16 {row['bf16']:7.3f} ms ({row['bf16_tflops']:5.0f})  "
            + "  ".join(
                f"{s} mm {row[f'fp8_{s}_mm']:7.3f} ({row[f'fp8_{s}_mm_tflops']:5.0f}) "
                f"layer {row[f'fp8_{s}_layer_compiled']:7.3f} ({row[f'fp8_{s}_layer_compiled_tflops']:5.0f})"
                for s in ("rowwise", "tensorwise")
            ),
            flush=True,
        )
    gpu = torch.cuda.get_device_name().replace(" ", "-")
    from datetime import date

    report = {
        "gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "commit": args.commit or current_commit(),
        "date": date.today().isoformat(), "unit": "ms, TFLOP/s", "shapes": results,
    }  # fmt: skip
    out = Path(args.out) / f"{date.today().isoformat()}-{gpu}-fp8-gemm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
