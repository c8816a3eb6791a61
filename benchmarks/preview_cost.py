"""What a latent preview costs (issue 21): the server's step callback rendering one every step, per preview.

    PYTHONPATH=src python -m benchmarks.preview_cost --device cpu --out benchmarks/results    # tiny, 2 cores: ~1 min
    PYTHONPATH=src python -m benchmarks.preview_cost --device cuda --full --out benchmarks/results   # one H200: ~4 min
    PYTHONPATH=src python -m benchmarks.preview_cost --device cpu --full-smoke --out DIR  # the --full path, tiny

Three measurements, each after a warm-up:
1. jobs: the tiny checkpoints run one request with the server's callback (JobProgress) previewing every step
   and the same request (same seed) with previews off: the previewer's own timer per preview (reading the
   latents, the projection on the device, the copy to the host, the PNG) and the request's extra wall
   time per step (median of --pairs pairs, the order alternated).
2. grids: latent grids of the shapes the full-size models make (LTX-2 768x512 and 1216x704 middle frames,
   FLUX.2 Klein 1024x1024, Qwen-Image 1328x1328), random, on the device: render() with learned colours
   (the steady state: the map is fitted after the first finished job) and with false colours (before it),
   the device idle before each call, so the time is the preview's own.
3. --full (a GPU): full-size LTX-2 one-stage 768x512x121 with random weights, 4 steps, previews every step
   against none: the extra wall time per step, which adds what a grid alone does not show, the wait for
   the step in flight (the preview's copy to the host syncs) and the launch of the next step after it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import torch

from benchmarks.harness.driver import current_commit, environment, new_file, report_path
from benchmarks.harness.stage_clock import sync

TINY = {
    "tiny-ltx2": dict(width=128, height=128, num_frames=17, num_inference_steps=12),
    "tiny-flux2-klein": dict(width=128, height=128, num_inference_steps=12),
    "tiny-qwen-image": dict(width=128, height=128, num_inference_steps=12),
}
# (name, channels, rows, cols): the latent grid a preview reads at full size.
GRIDS = (
    ("LTX-2 768x512 (a middle latent frame)", 128, 16, 24),
    ("LTX-2 1216x704", 128, 22, 38),
    ("FLUX.2 Klein 1024x1024", 128, 64, 64),
    ("Qwen-Image 1328x1328", 64, 83, 83),
)
FULL_LTX2 = dict(
    width=768, height=512, num_frames=121, frame_rate=24.0, num_inference_steps=4, pipeline="one-stage"
)


def timed_request(
    generate: Any, request: dict[str, Any], every: int, device: torch.device
) -> tuple[float, Any]:
    """(wall seconds, the JobProgress) of one request with a preview every `every` steps (0: none)."""
    from ditto.server.preview import LatentPreviewer
    from ditto.server.progress import JobProgress

    progress = JobProgress("bench", 1e9, lambda percent: None, every, LatentPreviewer())
    sync(device)
    start = time.perf_counter()
    generate(progress=progress, seed=0, prompt="a red fox in the snow", **request)
    sync(device)
    return time.perf_counter() - start, progress


def paired(generate: Any, request: dict[str, Any], device: torch.device, pairs: int) -> dict[str, Any]:
    """Previews every step against none: per preview (the previewer's timer) and extra wall time per step."""
    timed_request(generate, request, 1, device)  # warm-up, both paths
    extra, own = [], []
    for index in range(pairs):
        order = (1, 0) if index % 2 else (0, 1)
        times, previews = {}, 0
        for every in order:
            times[every], progress = timed_request(generate, request, every, device)
            if every:
                previews = progress.previews
                own.append(1000 * progress.preview_seconds / previews)
        extra.append(1000 * (times[1] - times[0]) / previews)
    return {
        "request": request,
        "preview_ms": statistics.median(own),
        "extra_wall_ms_per_step": statistics.median(extra),
        "extra_wall_ms_per_step_all": extra,
    }


def grid_costs(device: torch.device, repeats: int) -> dict[str, Any]:
    from ditto.runtime.progress import PreviewLatents
    from ditto.server.preview import LatentPreviewer

    results = {}
    for name, channels, rows, cols in GRIDS:
        grid = torch.randn(
            channels,
            rows,
            cols,
            device=device,
            dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
        )
        latents = PreviewLatents(grid)
        false = LatentPreviewer()
        learned = LatentPreviewer()
        learned.learn(PreviewLatents(grid.float().cpu()), torch.rand(1, rows * 8, cols * 8, 3).numpy())
        row = {}
        for label, previewer in (("learned_ms", learned), ("false_colours_ms", false)):
            previewer.render(latents)  # warm-up (kernels, the PNG encoder)
            times = []
            for _ in range(repeats):
                sync(device)
                start = time.perf_counter()
                previewer.render(latents)
                times.append(1000 * (time.perf_counter() - start))
            row[label] = statistics.median(times)
        row["png_pixels"] = f"{cols}x{rows}"
        results[name] = row
        print(
            f"{name:42s} learned {row['learned_ms']:.2f} ms, false colours {row['false_colours_ms']:.2f} ms"
        )
    return results


def tiny_jobs(device: torch.device, pairs: int) -> dict[str, Any]:
    from ditto.engine import Engine

    results = {}
    for model, request in TINY.items():
        engine = Engine.from_pretrained(model, device=str(device), dtype="float32")
        results[model] = paired(engine.generate, request, device, pairs)
        row = results[model]
        print(
            f"{model:18s} preview {row['preview_ms']:.2f} ms, extra wall {row['extra_wall_ms_per_step']:.2f} ms/step"
        )
    return results


def full_ltx2(device: torch.device, pairs: int, tiny: bool) -> dict[str, Any]:
    """The full-size LTX-2 (--full-smoke: the harness's tiny configs at 96x64x9, to prove the path on a CPU)."""
    from benchmarks.harness.full_size_ltx2 import build_ltx2_components
    from ditto.pipelines.ltx2.pipeline import LTX2Pipeline

    dtype = torch.float32 if tiny else torch.bfloat16
    pipe = LTX2Pipeline(build_ltx2_components(device, dtype, tiny))
    request = {**FULL_LTX2, **(dict(width=96, height=64, num_frames=9) if tiny else {})}
    row = paired(pipe.generate, request, device, pairs)
    size = f"{request['width']}x{request['height']}x{request['num_frames']}"
    print(
        f"LTX-2 {size}: preview {row['preview_ms']:.2f} ms, extra wall {row['extra_wall_ms_per_step']:.2f} ms/step"
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--full", action="store_true", help="also full-size LTX-2 (a GPU)")
    parser.add_argument("--full-smoke", action="store_true", help="that path with tiny configs (a CPU check)")
    parser.add_argument("--pairs", type=int, default=3, help="runs with and without previews (median)")
    parser.add_argument("--repeats", type=int, default=20, help="renders per grid (median)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    device = torch.device(args.device)
    report: dict[str, Any] = environment(device, current_commit(), "preview-cost")
    report["grids"] = grid_costs(device, args.repeats)
    report["tiny_jobs"] = tiny_jobs(device, args.pairs)
    if args.full or args.full_smoke:
        report["full_ltx2"] = full_ltx2(device, args.pairs, tiny=not args.full)
    out = new_file(report_path(args.out, report, "preview-cost", tiny=not args.full))
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
