"""Offload runs for benchmarks/gpu_offload.py: one pipeline built once, timed resident and then under each memory
budget (enforced with torch.cuda.set_per_process_memory_fraction), bf16 then FP8.

Each variant: a 2-step warm-up (compiles, in the first), a 2-step run and an N-step run. The stage-1 (LTX-2) or
denoise (Qwen-Image) seconds per step are the difference of the two runs' stage times over N - 2 steps (the
fixed costs of a stage, such as loading its resident blocks, cancel out), and the full-length total is
extrapolated from the N-step run with that rate: said so in the report. The report keeps every variant's
residency plan, stage times, per-stage device peaks (read from the allocator), the allocator's reserved peak,
the bytes moved host -> device, and the verdict against the issue's targets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks.harness.end_to_end import PROMPT

Save = Callable[[], None]
TARGETS = ((24 * 2**30, 3.0), (48 * 2**30, 1.5))  # (budget at most, time ratio at most) from issue 25


@dataclass(frozen=True)
class OffloadSettings:
    device: torch.device
    dtype: torch.dtype
    tiny: bool
    compile: bool
    ltx2_budgets: tuple[str, ...]  # "24GiB", ...; "min": the smallest the plan allows
    qwen_budgets: tuple[str, ...]
    fp8: bool
    bf16: bool  # False: only the FP8 runs (--fp8-only)
    ltx2_steps: int  # timed stage-1 steps (extrapolated to 40)
    qwen_steps: int  # timed denoise steps (extrapolated to 50)
    deadline: float


def ltx2_request(settings: OffloadSettings, steps: int) -> dict[str, Any]:
    """The issue's case: two-stage 768x512x121, 40 steps, CFG 4 (one batched pair per stage-1 step)."""
    height, width, frames = (64, 64, 9) if settings.tiny else (512, 768, 121)
    return dict(
        prompt=PROMPT, height=height, width=width, num_frames=frames, frame_rate=24, num_inference_steps=steps,
        guidance_scale=4.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0, audio_guidance_scale=4.0,
        audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0, pipeline="two-stage", seed=0,
    )  # fmt: skip


def qwen_request(settings: OffloadSettings, steps: int) -> dict[str, Any]:
    """The issue's case: 1024^2, 50 steps, true CFG (a negative prompt, true_cfg_scale 4)."""
    side = 32 if settings.tiny else 1024
    return dict(
        prompt=PROMPT, negative_prompt=" ", true_cfg_scale=4.0, height=side, width=side,
        num_inference_steps=steps, seed=0, max_sequence_length=64 if settings.tiny else 512,
    )  # fmt: skip


@contextmanager
def memory_cap(device: torch.device, budget: int | None) -> Iterator[None]:
    """The allocator may hold at most `budget` bytes (a smaller card); unlimited again afterwards."""
    if device.type != "cuda" or budget is None:
        yield
        return
    torch.cuda.empty_cache()
    # set_per_process_memory_fraction takes an index only ("cuda" alone is refused).
    index = torch.cuda.current_device() if device.index is None else device.index
    total = torch.cuda.get_device_properties(index).total_memory
    torch.cuda.set_per_process_memory_fraction(min(budget / total, 1.0), index)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, index)


def timed(run: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


@dataclass(frozen=True)
class Case:
    """One model's timed request: `request(steps)`, the loop whose steps are cut (`loop_stage`), the timed and
    the full step counts."""

    model: str
    request: Callable[[int], dict[str, Any]]
    loop_stage: str
    steps: int
    full: int
    budgets: tuple[str, ...]


def run_variant(pipe: Any, device: torch.device, case: Case) -> dict[str, Any]:
    """Warm-up, a 2-step run and an N-step run; per-step rate from their difference; the full-length total."""
    make_request, loop_stage, full, steps = case.request, case.loop_stage, case.full, max(case.steps, 3)
    # Warm-up at both lengths: a loop long enough records its CUDA graphs (and the FP8 blocks compile their
    # own graphs) on its first run, which must not land in the timed one.
    timed(lambda: pipe.generate(**make_request(2)), device)
    timed(lambda: pipe.generate(**make_request(steps)), device)
    short_s, short = timed(lambda: pipe.generate(**make_request(2)), device)
    moved = _moved_bytes(pipe)
    long_s, out = timed(lambda: pipe.generate(**make_request(steps)), device)
    per_step = (out.timings[loop_stage] - short.timings[loop_stage]) / (steps - 2)
    return {
        "total_s": long_s,
        "steps": steps,
        "two_step_total_s": short_s,
        "stage_s": dict(out.timings),
        "stage_peak_gib": {k: v / 2**30 for k, v in out.memory.items()},
        "reserved_peak_gib": torch.cuda.max_memory_reserved(device) / 2**30
        if device.type == "cuda"
        else None,
        "moved_gib_timed_run": (_moved_bytes(pipe) - moved) / 2**30,
        "per_step_s": per_step,
        f"extrapolated_{full}_steps_s": long_s + (full - steps) * per_step,
    }


def out_of_memory(pipe: Any, device: torch.device, plan: Any, error: Exception) -> dict[str, Any]:
    """What the allocator and the residency held when a budget run ran out of memory."""
    residency = pipe.components.residency
    gib = lambda n: n / 2**30  # noqa: E731
    return {
        "failed": f"OutOfMemoryError: {str(error).splitlines()[0]}",
        "stage": residency.current,
        "allocated_gib": gib(torch.cuda.memory_allocated(device)),
        "reserved_gib": gib(torch.cuda.memory_reserved(device)),
        "weights_on_device_gib": gib(residency.mover.loaded_bytes()),
        "plan": plan.describe().splitlines(),
    }


def _moved_bytes(pipe: Any) -> int:
    residency = pipe.components.residency
    return 0 if residency is None else residency.mover.moved_bytes


def budget_bytes(pipe: Any, token: str, request: dict[str, Any]) -> int:
    """A budget as given ("24GiB"), or "min": the smallest the plan allows for this request."""
    from ditto.acceleration.offload import parse_bytes
    from ditto.acceleration.offload.setup import smallest_budget

    return smallest_budget(pipe, request) if token == "min" else parse_bytes(token)


def verdict(budget: int, ratio: float, peak_gib: float | None) -> dict[str, Any]:
    """The issue's targets: peak within the budget, and the time ratio for budgets up to 24 / 48 GiB."""
    limit = next((ratio_limit for most, ratio_limit in TARGETS if budget <= most), None)
    within = None if peak_gib is None else peak_gib * 2**30 <= budget
    return {
        "ratio_limit": limit,
        "ratio_met": None if limit is None else ratio <= limit,
        "peak_within": within,
    }


def offload_variants(
    pipe: Any, settings: OffloadSettings, case: Case, section: dict[str, Any], save: Save, precision: str
) -> None:
    """The resident run, then one run per budget, for the pipeline as it is now (bf16 or FP8)."""
    from ditto.acceleration.offload import OffloadRequest, enable_offload, format_bytes
    from ditto.acceleration.offload.setup import disable_offload

    disable_offload(pipe)
    key = f"extrapolated_{case.full}_steps_s"
    resident = run_variant(pipe, settings.device, case)
    section["variants"][f"{precision}-resident"] = resident
    print(f"[{case.model}] {precision} resident: {resident[key]:.2f} s for {case.full} steps", flush=True)
    save()
    for token in case.budgets:
        if time.perf_counter() > settings.deadline:
            section.setdefault("skipped", []).append(f"{precision} {token}: over the time budget")
            continue
        budget = budget_bytes(pipe, token, case.request(case.full))
        request = OffloadRequest("cpu", budget, token)
        plan = enable_offload(pipe, settings.device, request, plan_for=case.request(case.full))
        try:
            with memory_cap(settings.device, budget):
                result = run_variant(pipe, settings.device, case)
        except torch.OutOfMemoryError as error:
            # Recorded with where it happened; the next budget (and the FP8 runs) still run.
            section["variants"][f"{precision}-{token}"] = out_of_memory(pipe, settings.device, plan, error)
            print(f"[{case.model}] {precision} within {token}: out of memory\n" + plan.describe(), flush=True)
            save()
            continue
        peaks = [*result["stage_peak_gib"].values()]
        peak = max(peaks) if peaks else None
        store = pipe.components.residency.mover.store
        result.update(
            budget=format_bytes(budget), plan=plan.describe().splitlines(), ratio=result[key] / resident[key],
            planned_moved_gib_full_request=plan.moved_per_request() / 2**30,
            homes_page_locked=store.pin and store.pinned, **verdict(budget, result[key] / resident[key], peak),
        )  # fmt: skip
        section["variants"][f"{precision}-{token}"] = result
        print(
            f"[{case.model}] {precision} within {format_bytes(budget)}: {result[key]:.2f} s "
            f"({result['ratio']:.2f}x resident), peak {peak} GiB\n" + plan.describe(),
            flush=True,
        )
        save()
    disable_offload(pipe)
