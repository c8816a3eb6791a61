"""LTX-2's official pipelines beyond two-stage, end to end on one GPU: full size, random weights, one process.

    PYTHONPATH=src python -m benchmarks.gpu_ltx2_recipes --out DIR [--commit SHA]   # ~2-3 min on an H200
    PYTHONPATH=src python -m benchmarks.gpu_ltx2_recipes --tiny --device cpu --out DIR   # CPU smoke run

Each pipeline runs once at its official default size (params.PIPELINE_DEFAULTS: hq 1920x1088, the two-stage
ones 1536x1024, 121 frames; retake on a 768x512x121 source, the one-stage size) after one small warm-up
run, on the LTX-2 19B layout with Gemma-3 12B (benchmarks/harness/full_size_ltx2.py), the distilled LoRA
(rank 384) and a random IC-LoRA (rank 64) beside the weights. Stage 1 (retake: its one stage) runs
--steps steps instead of the official count; the report gives the measured total and the total
extrapolated to the official count with stage 1's time per step (which includes encoding the stage's
conditioning once: an upper bound). ic-lora runs its fixed 8 + 3 distilled steps. The VAE tiles its
encoding and decoding (diffusers' enable_tiling; the official pipelines decode with TilingConfig.default()):
untiled, 121 frames at 1536x1024 do not fit. The pipelines run cheapest first and none starts after
--budget-s (a cut drops hq, the costliest); DIR/<date>-<gpu>-ltx2-recipes.json is rewritten after each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.gpu_pipelines import header
from benchmarks.harness.end_to_end import free_device

PIPELINES = ("retake", "keyframe-interpolation", "audio-to-video", "ic-lora", "hq")  # cheapest first
OFFICIAL_STEPS = {"hq": 15, "keyframe-interpolation": 40, "retake": 40, "audio-to-video": 30}
IC_LORA_RANK = 64
SOURCE = dict(width=768, height=512, frames=121, fps=24.0)  # the retake source / control clip
TINY_SOURCE = dict(width=128, height=128, frames=9, fps=24.0)


def build(device: torch.device, dtype: torch.dtype, tiny: bool):
    """The full-size (or tiny) LTX2Pipeline with its distilled LoRA and an IC-LoRA, both in memory."""
    from benchmarks.harness.full_size_ltx2 import build_ltx2, random_distilled_lora
    from ditto.loading.lora_side import LoraSide
    from ditto.pipelines.ltx2.lora import DistilledLora

    pipe = build_ltx2(device, dtype, tiny)
    components = pipe.components
    components.ic_lora = Path("random-ic-lora")  # a name only: the file is handed over in memory
    modules = {"transformer": components.transformer, "connectors": components.connectors}
    pipe.ic_lora = DistilledLora(components.ic_lora, pipe.loras, LoraSide(modules))
    pipe.ic_lora.use_file(random_distilled_lora(components.transformer, 4 if tiny else IC_LORA_RANK, seed=9))
    components.vae.enable_tiling()
    return pipe


def write_media(folder: Path, tiny: bool) -> dict[str, Path]:
    """A source MP4 with stereo sound (retake, and audio-to-video's sound), a control clip and two pictures."""
    from PIL import Image

    from ditto.media.video import write_mp4

    size = TINY_SOURCE if tiny else SOURCE
    height, width, count = size["height"], size["width"], size["frames"]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.stack(
        [np.stack([x / width, y / height, np.full_like(x, t / count)], -1) for t in range(count)]
    )
    seconds = count / size["fps"] + 0.5
    t = np.arange(int(48000 * seconds)) / 48000
    sound = (0.3 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)])).astype(np.float32)
    paths = {"source": write_mp4(folder / "source.mp4", frames, size["fps"], sound, 48000)}
    paths["control"] = write_mp4(folder / "control.mp4", frames, size["fps"])
    for name, index in (("first", 0), ("last", -1)):
        Image.fromarray((frames[index] * 255).astype(np.uint8)).save(folder / f"{name}.png")
        paths[name] = folder / f"{name}.png"
    return paths


def requests(media: dict[str, Path], steps: int, tiny: bool) -> dict[str, dict[str, Any]]:
    """Each pipeline's request: the official defaults, but `steps` stage-1 steps (and tiny sizes if tiny)."""
    size = dict(height=128, width=128, num_frames=9) if tiny else {}
    source = TINY_SOURCE if tiny else SOURCE
    last, seconds = source["frames"] - 1, source["frames"] / source["fps"]
    images = [f"{media['first']}:0", f"{media['last']}:{last}"]
    return {
        "hq": dict(size, num_inference_steps=steps),
        "keyframe-interpolation": dict(size, num_inference_steps=steps, image=images),
        "ic-lora": dict(size, reference_video=str(media["control"]), reference_downscale_factor=1),
        "retake": dict(
            video=str(media["source"]),
            start_time=0.2 * seconds,
            end_time=0.6 * seconds,
            num_inference_steps=steps,
        ),
        "audio-to-video": dict(size, num_inference_steps=steps, audio=str(media["source"])),
    }


def timed(pipe, device: torch.device, request: dict[str, Any]) -> tuple[float, dict[str, float]]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = pipe.generate(prompt="a fox runs through the snow at dusk", seed=1, **request)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, dict(result.timings)


def measure(pipe, device: torch.device, name: str, request: dict[str, Any], steps: int) -> dict[str, Any]:
    total, stages = timed(pipe, device, dict(request, pipeline=name))
    entry: dict[str, Any] = {"total_s": total, "stage_timer_s": stages, "stage_1_steps": steps}
    if name in OFFICIAL_STEPS:
        stage_one = stages.get("denoise_stage_1", stages.get("denoise", 0.0))
        official = OFFICIAL_STEPS[name]
        entry["official_steps"] = official
        entry[f"extrapolated_{official}_steps_s"] = total + (official - steps) * stage_one / steps
    else:
        entry["stage_1_steps"] = 8  # ic-lora: the fixed distilled schedule
    if device.type == "cuda":
        entry["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    print(f"[{name}] {json.dumps(entry)}", flush=True)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help=f"comma list of {list(PIPELINES)}")
    parser.add_argument(
        "--steps", type=int, default=2, help="stage-1 steps run (extrapolated to the official)"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), help="default: bfloat16 on cuda, float32 on cpu"
    )
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default=None)
    parser.add_argument(
        "--budget-s", type=float, default=240.0, help="start no pipeline after this many seconds (from start)"
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="(recorded only: the pipelines run eagerly)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    device = torch.device(args.device)
    args.dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    args.repeats = 1
    report = header(device, args)
    report["method"] = (
        "one run per pipeline after a small warm-up, wall clock with device syncs; stage 1 runs --steps steps, "
        "extrapolated to the official count with stage 1's time per step"
    )
    gpu = report["gpu"].replace(" ", "-").replace("/", "-")
    out = Path(args.out) / f"{report['date']}-{gpu}-ltx2-recipes{'-tiny' if args.tiny else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pipe = build(device, getattr(torch, args.dtype), args.tiny)
    report["build_s"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        media = write_media(Path(folder), args.tiny)
        cases = requests(media, args.steps, args.tiny)
        warm = dict(height=128, width=128, num_frames=9, num_inference_steps=1, pipeline="one-stage")
        report["warmup_s"] = timed(pipe, device, warm)[0]
        report["pipelines"] = {}
        for name in args.pipelines.split(","):
            if time.perf_counter() - start > args.budget_s:
                report.setdefault("skipped", []).append(f"{name}: over the {args.budget_s:.0f} s budget")
                continue
            try:
                report["pipelines"][name] = measure(pipe, device, name, cases[name], args.steps)
            except Exception as exc:  # noqa: BLE001 (one pipeline failing must not lose the others' numbers)
                report.setdefault("failures", {})[name] = f"{type(exc).__name__}: {exc}"[:3000]
                print(f"[{name}] FAILED: {type(exc).__name__}: {exc}"[:3000], flush=True)
            out.write_text(json.dumps(report, indent=1, default=str))
            free_device(device)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out}")
    return 1 if report.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
