"""Multi-GPU: one GPU against N on the same weights and inputs, under torchrun (one process per GPU).

    torchrun --standalone --nproc-per-node N -m benchmarks.gpu_parallel --case ltx2-two-stage --out DIR
    torchrun --standalone --nproc-per-node 2 -m benchmarks.gpu_parallel --tiny --device cpu --out DIR  # CPU proof

Every rank builds the case's full-size pipeline with the same random weights (benchmarks/harness); rank 0
first times it alone (one GPU, the others wait), then every rank runs it with the parallel pieces attached
(CFG-parallel, Ulysses, band VAE decode: `--ulysses`, `--audio`, `--text`, `--no-vae` choose the
ParallelConfig). Rank 0 reports: total seconds (median of --repeats after a warm-up) and per-stage split
for 1 and N GPUs, the speed-up and the scaling efficiency t1 / (N tN), the relative L2 of the N-GPU final
latents against the 1-GPU ones, which split each loop used, and the share of a run's device time spent in
collectives (torch.profiler). Cases: ltx2-two-stage (768x512x121, 40 steps, CFG 4), ltx2-one-stage
(1280x704x121, official 4-pass guidance; 4 steps by default, per-step time extrapolated to 40 and said so),
qwen-image (1024^2, 50 steps, true CFG 4). One case per command keeps each under the device's 10 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from benchmarks.gpu_pipelines import _commit
from benchmarks.harness import parallel_runs as runs


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", default="ltx2-two-stage", choices=sorted(runs.CASES))
    parser.add_argument("--out", required=True, help="folder for the JSON report")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--tiny", action="store_true", help="tiny widths and sizes (the CPU proof)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the case's)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs after one warm-up (median)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="as compile=True: regional compile, CUDA-graphed passes (GPU only)")  # fmt: skip
    parser.add_argument("--quantization", choices=["fp8"], help="as quantization='fp8' (FP8 block products)")
    parser.add_argument("--ulysses", type=int, help="sequence-parallel ranks within each pass (default 1)")
    parser.add_argument("--audio", default="replicate", choices=["replicate", "shard"])
    parser.add_argument("--text", default="replicate", choices=["replicate", "split"])
    parser.add_argument("--no-vae", action="store_true", help="decode the whole video on every rank")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-GPU runs")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args()


def setup(args: argparse.Namespace) -> tuple[Any, torch.device]:
    from ditto.parallel import ParallelConfig
    from ditto.parallel.launch import join_group, rank_device
    from ditto.parallel.mesh import Mesh

    world = int(os.environ.get("WORLD_SIZE", "1"))
    config = ParallelConfig.for_gpus(world, args.ulysses, audio=args.audio, text=args.text, vae=not args.no_vae,
                                     timeout_s=3600)  # fmt: skip
    device = torch.device(args.device)
    join_group(config, device, None)
    return Mesh(config), rank_device(device)


def prepare(args: argparse.Namespace, case: runs.Case, device: torch.device) -> Any:
    from ditto.engine import accelerate
    from ditto.engine_options import EngineOptions
    from ditto.layers.attention import use_fast_attention
    from ditto.pipelines.base import parse_dtype

    dtype = parse_dtype(args.dtype) if device.type == "cuda" else torch.float32
    pipe = runs.build(case.family, device, dtype, args.tiny)
    use_fast_attention(device)
    options = EngineOptions(compile=args.compile and device.type == "cuda", quantization=args.quantization)
    accelerate(pipe, options, device)
    return pipe


def main() -> int:
    from ditto.parallel.loop import attach, detach

    args = parse()
    mesh, device = setup(args)
    case = runs.CASES[args.case]
    steps = args.steps or (2 if args.tiny else case.default_steps)
    request = case.request(args.tiny, steps)
    pipe = prepare(args, case, device)
    report = header(args, case, mesh, request, steps)
    one = None
    if not args.no_baseline:
        if mesh.leader:
            detach(pipe)
            report["one_gpu"] = runs.timed_runs(pipe, request, args.repeats, device, None)
            one = runs.latents(pipe, request)
        dist.barrier(group=mesh.control.pg)  # the others wait here while rank 0 runs alone
    attach(pipe, mesh)
    report["n_gpus"] = runs.timed_runs(pipe, request, args.repeats, device, mesh.host.pg)
    many = runs.latents(pipe, request)
    if args.profile:
        report["communication"] = runs.communication(pipe, request, device)
    if mesh.leader:
        finish(report, one, many, case, steps, Path(args.out))
    dist.barrier(group=mesh.control.pg)
    dist.destroy_process_group()
    return 0


def header(args: argparse.Namespace, case: runs.Case, mesh: Any, request: dict, steps: int) -> dict[str, Any]:
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "case": case.name, "note": case.note, "gpus": mesh.size, "gpu": gpu, "date": datetime.date.today().isoformat(),
        "commit": _commit(), "torch": torch.__version__, "tiny": args.tiny, "steps": steps,
        "parallel": {k: getattr(mesh.config, k) for k in ("cfg", "ulysses", "audio", "vae", "text")},
        "request": {k: v for k, v in request.items() if k != "prompt"}, "compile": args.compile,
        "quantization": args.quantization,
        "method": "wall clock with device syncs; median of --repeats runs after one warm-up; all ranks start each "
        "run together; split from the pipeline's stage timer",
    }  # fmt: skip


def finish(report: dict, one: dict | None, many: dict, case: runs.Case, steps: int, out: Path) -> None:
    n = report["gpus"]
    if one is not None:
        t1, tn = report["one_gpu"]["total_s"], report["n_gpus"]["total_s"]
        report.update(speedup=t1 / tn, efficiency=t1 / (n * tn), relative_l2=runs.relative_l2(many, one))
    if steps < case.steps_of_record:
        report["extrapolated"] = extrapolate(report, steps, case.steps_of_record)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{report['date']}-{report['gpu'].replace(' ', '-')}-parallel-{case.name}-{n}gpu.json"
    (out / name).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(summary(report), flush=True)
    print(f"wrote {out / name}")


def extrapolate(report: dict, steps: int, target: int) -> dict[str, float]:
    """Totals at `target` steps: the stepped denoising stage scaled per step (not the two-stage recipe's
    fixed 3-step stage 2), the rest as measured."""
    found = {}
    for key in ("one_gpu", "n_gpus"):
        if key in report:
            split = report[key]["split_s"]
            denoise = split.get("denoise", 0.0) + split.get("denoise_stage_1", 0.0)
            found[f"{key}_total_s_at_{target}_steps"] = report[key]["total_s"] + denoise * (
                target / steps - 1
            )
    return found


def summary(report: dict) -> str:
    lines = [
        f"{report['case']} on {report['gpus']} x {report['gpu']} ({report['note']}, {report['steps']} steps)"
    ]
    for key in ("one_gpu", "n_gpus"):
        if key in report:
            split = ", ".join(f"{k} {v:.2f}" for k, v in report[key]["split_s"].items())
            lines.append(
                f"  {key:7s} {report[key]['total_s']:8.2f} s   [{split}]   loops: {report[key]['split_used']}"
            )
    for key in ("speedup", "efficiency", "relative_l2", "extrapolated", "communication"):
        if key in report:
            lines.append(f"  {key}: {report[key]}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
