"""The step cache on LTX-2 one-stage, full size, random weights, one process (issue 17's speed check).

    PYTHONPATH=src python -m benchmarks.gpu_step_cache --out benchmarks/results           # one H200: ~3.5 min
    PYTHONPATH=src python -m benchmarks.gpu_step_cache --tiny --device cpu --out DIR       # CPU smoke run

768x512x121, the official guidance (CFG pair + STG + modality isolation: 4 samples a step), eager bf16 (no
compile: whole-pass CUDA graphs are off in cached loops anyway). Variants, each one timed run of --steps
steps after one shared 2-step warm-up, the transformer's forwards timed by device syncs at their edges:
- no-cache;
- mask: computes 40 % of the steps (16 of 40: steps 0-7 and every 4th after, the last included), Fn=Bn=0;
- dbcache-forced: DBCache F1B0 with threshold=1 (always similar), so only warm-up and max_cached=3 decide:
  a fixed pattern, no residual comparison on the host. Its transformer-time saving is compared with what
  the blocks left out predict: 1 - blocks run / blocks run uncached (counted by an innermost loop feature;
  the STG pass resumes from the conditional one after their shared prefix, cached or not). A least-squares
  fit of transformer time = passes x fixed + blocks x per block over the three variants gives what a pass
  costs besides its blocks.
With --steps under 40 (the default is 10, to stay in the device budget) the 40-step figure is extrapolated
as (total - denoise) + 40 / steps * denoise: the mask keeps its 40 % share at any step count, so the per-step
mix of computed and skipped steps is the one of 40 steps; the JSON says which figures are extrapolated.
Exactness: a 2-step never-skipping spec (dbcache threshold=0) against no cache, bit for bit. Random weights
say nothing of quality: only speed and exactness are reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.stage_clock import measure, wall_seconds

PROMPT = "a red fox trotting through fresh snow at dawn, soft light, shallow depth of field"
FORCED = "dbcache:Fn=1,Bn=0,threshold=1,warmup=2,max_cached=3"


def mask_steps(steps: int, share: float = 0.4) -> list[int]:
    """round(share * steps) computed steps: the first fifth dense, the rest evenly spaced, the last included."""
    total, dense = round(share * steps), max(1, round(0.2 * steps))
    rest, span = total - dense, steps - dense
    return list(range(dense)) + [dense + round((i + 1) * span / rest) - 1 for i in range(rest)]


def request(tiny: bool, steps: int, **more: Any) -> dict[str, Any]:
    height, width, frames = (64, 96, 9) if tiny else (512, 768, 121)
    return dict(
        prompt=PROMPT, height=height, width=width, num_frames=frames, frame_rate=24, num_inference_steps=steps,
        pipeline="one-stage", seed=0, **more,
    )  # fmt: skip


class BlockCounter:
    """The innermost loop feature: counts the blocks the loop really runs (a cache's skipped ones never reach
    it; the STG pass resumed after its shared prefix runs only its own)."""

    handles_resumed_plans = True
    replayable = False  # it counts in Python on every pass

    def __init__(self) -> None:
        self.blocks = 0

    def run_blocks(self, plan, streams, ctx, inner):
        self.blocks += len(plan)
        return inner(plan, streams, ctx)


def variant(
    pipe: Any, device: torch.device, args: argparse.Namespace, cache: str | None, counter: BlockCounter
) -> dict[str, Any]:
    run = lambda: pipe.generate(**request(args.tiny, args.steps, cache=cache))  # noqa: E731
    targets = [(pipe.components.transformer, "forward", "transformer")]
    counter.blocks = 0
    result, out = measure(run, device, targets, warmup=0, repeats=args.repeats)
    runs = max(args.repeats, 0) + 1  # measure() runs the request repeats + 1 times (the split run last)
    total, denoise = result["total_ms"] / 1e3, out.timings["denoise"]
    result.update(
        cache=cache, total_s=total, denoise_s=denoise, transformer_s=result["split_ms"]["transformer"] / 1e3,
        passes=result["calls"]["transformer"], blocks_run=counter.blocks // runs, cache_stats=out.cache_stats,
        steps=args.steps, total_40_steps_s=(total - denoise) + 40 / args.steps * denoise,
    )  # fmt: skip
    print(
        f"{cache or 'no cache':50s} {total:8.2f} s ({args.steps} steps), 40 steps: {result['total_40_steps_s']:.2f} s"
    )
    return result


def exactness(pipe: Any, tiny: bool) -> bool:
    """A spec that never skips gives the uncached latents bit for bit (2 steps)."""
    plain = pipe.generate(**request(tiny, 2, output_type="latent")).latents
    never = pipe.generate(**request(tiny, 2, output_type="latent", cache="dbcache:threshold=0")).latents
    return all(torch.equal(plain[k], never[k]) for k in plain)


def predicted_saving(cached: dict[str, Any], uncached: dict[str, Any]) -> float:
    """The transformer-time saving the blocks left out predict: 1 - blocks run / blocks run uncached (a pass
    costs its blocks; what runs outside them is taken as free, so the gap to the measured saving is that)."""
    return 1 - cached["blocks_run"] / uncached["blocks_run"]


def pass_cost_fit(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Transformer seconds = passes x fixed + blocks x per block, least squares over the variants: what a pass
    costs besides its blocks (embeddings, RoPE tables, the output head, eager launches)."""
    rows = [(r["passes"], r["blocks_run"], r["transformer_s"]) for r in runs.values()]
    a = torch.tensor([[p, b] for p, b, _ in rows], dtype=torch.float64)
    y = torch.tensor([[t] for _, _, t in rows], dtype=torch.float64)
    fixed, per_block = torch.linalg.lstsq(a, y).solution.flatten().tolist()
    return {"fixed_ms_per_pass": fixed * 1e3, "ms_per_block": per_block * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--steps", type=int, default=10, help="steps of each timed run (40: no extrapolation)"
    )
    parser.add_argument(
        "--repeats", type=int, default=0, help="plain timed runs (median) before the split run"
    )
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), help="default: bfloat16 on cuda, float32 on cpu"
    )
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default=None, help="the commit measured (default: git rev-parse HEAD)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    from benchmarks.harness.full_size_ltx2 import build_ltx2_components
    from ditto.acceleration.step_cache import install_step_cache
    from ditto.pipelines.ltx2.pipeline import LTX2Pipeline

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    started = time.perf_counter()
    pipe = LTX2Pipeline(build_ltx2_components(device, dtype, args.tiny))
    install_step_cache(pipe)
    counter = BlockCounter()
    pipe.loop_features.append(lambda info: counter)  # innermost: after the cache
    report: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "date": datetime.date.today().isoformat(), "commit": args.commit or os.popen("git rev-parse HEAD").read().strip(),
        "case": "LTX-2 one-stage {width}x{height}x{num_frames}, official guidance, eager".format(**request(args.tiny, 1)),
        "build_s": time.perf_counter() - started, "tiny": args.tiny,
    }  # fmt: skip
    report["warmup_2_steps_s"] = wall_seconds(lambda: pipe.generate(**request(args.tiny, 2)), device)[0]
    report["never_skip_bit_identical"] = exactness(pipe, args.tiny)
    mask = "mask:compute=" + "+".join(map(str, mask_steps(args.steps)))
    runs = {name: variant(pipe, device, args, cache, counter) for name, cache in
            (("no-cache", None), ("mask", mask), ("dbcache-forced", FORCED))}  # fmt: skip
    report["variants"] = runs
    base, masked, forced = runs["no-cache"], runs["mask"], runs["dbcache-forced"]
    actual = 1 - forced["transformer_s"] / base["transformer_s"]
    predicted = predicted_saving(forced, base)
    report["results"] = {
        **pass_cost_fit(runs),
        "mask_speedup_measured": base["total_s"] / masked["total_s"],
        "mask_speedup_40_steps" + ("" if args.steps == 40 else "_extrapolated"): base["total_40_steps_s"]
        / masked["total_40_steps_s"],
        "dbcache_transformer_saving": actual,
        "dbcache_predicted_saving": predicted,
        "dbcache_saving_vs_prediction": actual / predicted,
    }
    out = Path(args.out) / f"{report['date']}-step-cache{'-tiny' if args.tiny else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(
        json.dumps(report["results"], indent=1),
        f"\nnever-skip bit identical: {report['never_skip_bit_identical']}",
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
