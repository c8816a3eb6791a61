"""What benchmarks/gpu_parallel.py measures on every rank: the cases, timed runs, and the share of a run's
time spent in collectives (from a torch.profiler trace).

All ranks run the same generate calls at once (SPMD: the same request and seed give every rank the same
noise; the parallel pieces exchange the rest), so no leader protocol is involved; rank 0 reports.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
import torch.distributed as dist

from benchmarks.harness.end_to_end import PROMPT, ltx2_request

# A profiler event is communication when its name says so: NCCL kernels on a GPU, the gloo/c10d collective
# ops on a CPU.
COMM_MARKERS = (
    "nccl",
    "gloo",
    "c10d::",
    "all_to_all",
    "alltoall",
    "allgather",
    "all_gather",
    "broadcast",
    "send",
    "recv",
)


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # which builder
    request: Callable[[bool, int], dict[str, Any]]  # (tiny, steps) -> generate kwargs
    default_steps: int
    steps_of_record: int  # the step count: per-step times are extrapolated to it when fewer are run
    note: str


def ltx2_two_stage(tiny: bool, steps: int) -> dict[str, Any]:
    """The peers' case, as benchmarks/gpu_pipelines.py runs it: 768x512x121, CFG 4, stage 2 unguided."""
    return ltx2_request(SimpleNamespace(tiny=tiny), steps)


def ltx2_one_stage(tiny: bool, steps: int) -> dict[str, Any]:
    """1280x704x121, one stage, the official guidance (CFG 3 / 7, STG 1 at block 29, modality 3, rescale
    0.7: the defaults): four passes a step."""
    height, width, frames = (256, 128, 9) if tiny else (704, 1280, 121)
    extra = dict(spatio_temporal_guidance_blocks=[1]) if tiny else {}
    return dict(prompt=PROMPT, negative_prompt="blurry, low quality", height=height, width=width,
                num_frames=frames, num_inference_steps=steps, pipeline="one-stage", seed=0, **extra)  # fmt: skip


def qwen_image(tiny: bool, steps: int) -> dict[str, Any]:
    side = 64 if tiny else 1024
    return dict(prompt=PROMPT, negative_prompt="blurry, low quality", true_cfg_scale=4.0, height=side, width=side,
                num_inference_steps=steps, seed=0)  # fmt: skip


CASES = {
    "ltx2-two-stage": Case("ltx2-two-stage", "ltx2", ltx2_two_stage, 40, 40, "40 stage-1 steps, CFG 4, 3 distilled steps"),
    "ltx2-one-stage": Case("ltx2-one-stage", "ltx2", ltx2_one_stage, 4, 40, "official 4-pass guidance"),
    "qwen-image": Case("qwen-image", "qwen-image", qwen_image, 50, 50, "true CFG 4"),
}  # fmt: skip


def build(family: str, device: torch.device, dtype: torch.dtype, tiny: bool) -> Any:
    torch.manual_seed(0)  # every rank builds the same random weights
    if family == "ltx2":
        from benchmarks.harness.full_size_ltx2 import build_ltx2

        return build_ltx2(device, dtype, tiny)
    from benchmarks.harness.full_size_qwen import build_qwen_image

    return build_qwen_image(device, dtype, tiny)


def synced(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_runs(
    pipe: Any, request: dict[str, Any], repeats: int, device: torch.device, group: Any
) -> dict[str, Any]:
    """One warm-up (compiles, fills caches), then `repeats` timed runs; every rank of `group` starts each run
    together (None: this rank alone). Total: the median; split: the per-stage times of the median run."""
    runs = []
    for index in range(repeats + 1):
        if group is not None:
            dist.barrier(group=group)
        synced(device)
        started = time.perf_counter()
        with torch.inference_mode():
            result = pipe.generate(**request)
        synced(device)
        if index:
            runs.append((time.perf_counter() - started, result.timings, result.stats.get("parallel")))
    totals = [seconds for seconds, _, _ in runs]
    median = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return {
        "total_s": statistics.median(totals),
        "runs_s": totals,
        "split_s": median[1],
        "split_used": median[2],
    }


def latents(pipe: Any, request: dict[str, Any]) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        out = pipe.generate(**{**request, "output_type": "latent"})
    return {key: value.float() for key, value in out.latents.items()}


def relative_l2(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, float]:
    return {key: ((ours[key] - value).norm() / value.norm()).item() for key, value in reference.items()}


def communication(pipe: Any, request: dict[str, Any], device: torch.device) -> dict[str, float]:
    """One run under torch.profiler: time in collectives against all device time (GPU), or CPU time in the
    collective ops against the run's wall time (CPU)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    synced(device)
    started = time.perf_counter()
    with profile(activities=activities) as trace, torch.inference_mode():
        pipe.generate(**request)
        synced(device)
    wall = time.perf_counter() - started
    comm = total = 0.0
    for event in trace.key_averages():
        name = event.key.lower()
        if device.type == "cuda":
            spent = getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0))
        else:
            spent = event.self_cpu_time_total
        total += spent
        if any(marker in name for marker in COMM_MARKERS):
            comm += spent
    total_s = total / 1e6 if device.type == "cuda" else wall
    return {"comm_s": comm / 1e6, "measured_s": total_s, "comm_share": comm / 1e6 / max(total_s, 1e-9),
            "what": "device time in NCCL kernels / all device kernel time" if device.type == "cuda"
            else "CPU time in gloo collective ops / the run's wall time"}  # fmt: skip
