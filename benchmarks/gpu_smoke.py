"""Every family's embedded tiny model through the Python API and the CLI on a GPU, bf16: does ditto run there?

    PYTHONPATH=src python -m benchmarks.gpu_smoke --out DIR

The CPU test suite proves the numbers; this proves the CUDA paths (device placement, bf16, attention
backend choice, two-stage with the side-path LoRA) work end to end. Writes DIR/gpu-smoke.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness.stage_clock import request_peak_gib

CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # name: (model, from_pretrained options, generate kwargs)
    "ltx2": ("tiny-ltx2", {}, dict(width=128, height=96, num_frames=17, num_inference_steps=4)),
    "ltx2.3": ("tiny-ltx2.3", {}, dict(width=128, height=96, num_frames=17, num_inference_steps=4)),
    "ltx2-two-stage": (
        "ltx2-stages",
        {},
        dict(width=128, height=128, num_frames=9, num_inference_steps=3, pipeline="two-stage"),
    ),
    "flux2-klein": ("tiny-flux2-klein", {}, dict(width=128, height=128, num_inference_steps=4)),
    "qwen-image": ("tiny-qwen-image", {}, dict(width=128, height=128, num_inference_steps=4)),
    "ltx2-compiled": (
        "tiny-ltx2",
        {"compile": True},
        dict(width=128, height=96, num_frames=17, num_inference_steps=4),
    ),
    "flux2-klein-compiled": (
        "tiny-flux2-klein",
        {"compile": True},
        dict(width=128, height=128, num_inference_steps=4),
    ),
}


def run_case(
    model: str, options: dict[str, Any], kwargs: dict[str, Any], device: str, dtype: str
) -> dict[str, Any]:
    from ditto import Engine
    from ditto.layers.attention import attention_backends

    started = time.perf_counter()
    engine = Engine.from_pretrained(model, device=device, dtype=dtype, **options)
    loaded = time.perf_counter() - started
    result = engine.generate(prompt="a red fox in the snow", seed=0, **kwargs)
    arrays = [a for a in (result.frames, result.images, result.audio) if a is not None]
    return {
        "load_s": loaded,
        "timings": dict(result.timings),
        "shapes": [list(np.asarray(a).shape) for a in arrays],
        "finite": bool(arrays) and all(bool(np.isfinite(np.asarray(a)).all()) for a in arrays),
        "attention": attention_backends(),
        "peak_gib": request_peak_gib(torch.device(device), result),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=".")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    report: dict[str, Any] = {"gpu": gpu, "torch": torch.__version__, "dtype": args.dtype, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        from ditto.tiny.ltx2 import build_tiny_ltx2

        stages = Path(tmp) / "ltx2-stages"
        build_tiny_ltx2(stages, with_upsampler=True, with_distilled_lora=True)
        for name, (model, options, kwargs) in CASES.items():
            model = str(stages) if model == "ltx2-stages" else model
            try:
                report["cases"][name] = run_case(model, options, kwargs, args.device, args.dtype)
            except Exception:  # noqa: BLE001 (report every family, then fail)
                report["cases"][name] = {"error": traceback.format_exc()[-3000:]}
            print(name, json.dumps(report["cases"][name], default=str)[:1500], flush=True)
        report["cli"] = _cli(Path(tmp), args.device, args.dtype)
    Path(args.out, "gpu-smoke.json").write_text(json.dumps(report, indent=1, default=str))
    failed = [n for n, c in report["cases"].items() if "error" in c or not c["finite"]]
    print("failed:", failed or "none", "| cli rc:", report["cli"]["rc"])
    return 1 if failed or report["cli"]["rc"] else 0


def _cli(tmp: Path, device: str, dtype: str) -> dict[str, Any]:
    from ditto.cli import main as ditto

    png = tmp / "cat.png"
    argv = ["generate", "--model", "tiny-flux2-klein", "--prompt", "a cat", "--output", str(png)]
    rc = ditto([*argv, "--device", device, "--dtype", dtype, "--width", "128", "--height", "128"])
    return {"rc": rc, "png_written": png.is_file()}


if __name__ == "__main__":
    raise SystemExit(main())
