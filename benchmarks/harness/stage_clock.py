"""Wall-clock timing of whole pipelines, split by the modules they call.

A pipeline is timed from the outside (one device sync at the end), so ditto and diffusers are measured
the same way whatever their own timers do. The split comes from a separate run in which chosen methods
(a text encoder's forward, a VAE's decode, ...) are wrapped: a device sync before and after each call puts
the GPU time on the right label. The syncs sit at module boundaries only, never inside a block loop.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

# (object, method name, label): the method of that object whose calls are timed under the label.
Target = tuple[object, str, str]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StageClock:
    """Seconds and call counts per label, filled while `watching` is active."""

    device: torch.device
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter = field(default_factory=Counter)

    @contextmanager
    def watching(self, targets: list[Target]) -> Iterator[StageClock]:
        """Wrap each target method on its instance; the class and other instances are untouched."""
        saved = []
        for obj, name, label in targets:
            had_own = name in vars(obj)  # an instance attribute already (e.g. wrapped by someone else)
            original = getattr(obj, name)
            setattr(obj, name, self._timed(original, label))
            saved.append((obj, name, had_own, original))
        try:
            yield self
        finally:
            for obj, name, had_own, original in reversed(saved):
                if had_own:
                    setattr(obj, name, original)
                else:
                    delattr(obj, name)

    def _timed(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            sync(self.device)
            self.seconds[label] += time.perf_counter() - start
            self.calls[label] += 1
            return out

        return timed


def request_peak_gib(device: torch.device, result: Any) -> float | None:
    """The device's peak over a run: ditto's StageTimer restarts the allocator's peak at each stage (its
    `Result.memory` holds each stage's), so the run's peak is the larger of those and what is read after."""
    if device.type != "cuda":
        return None
    stages = getattr(result, "memory", None) or {}
    return max([torch.cuda.max_memory_allocated(device), *stages.values()]) / 2**30


def wall_seconds(run: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """(seconds, result) of one call, with the device drained before and after."""
    sync(device)
    start = time.perf_counter()
    out = run()
    sync(device)
    return time.perf_counter() - start, out


def measure(
    run: Callable[[], Any],
    device: torch.device,
    targets: list[Target],
    warmup: int = 1,
    repeats: int = 3,
    split_runs: int = 1,
) -> tuple[dict[str, Any], Any]:
    """Warm up, time `repeats` plain runs (median), then `split_runs` runs split by `targets` (median per
    label).

    With repeats=0 the split run is the only timed one (long pipelines, where the module-boundary syncs
    cost nothing measurable). Returns (report, the last run's result).
    """
    for _ in range(warmup):
        run()
    totals = []
    out = None
    for _ in range(repeats):
        # The previous result is dropped before the next run, as a server drops each result once written:
        # held, it keeps its page-locked output buffer, and the next LTX-2 run pins a fresh 570 MB one
        # (+0.3-0.5 s, the slow second run of three in RESULTS.md's 2026-11-23 calls).
        out = None
        seconds, out = wall_seconds(run, device)
        totals.append(seconds)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clocks: list[tuple[float, StageClock]] = []
    for _ in range(max(split_runs, 1)):
        clock, out = StageClock(device), None
        with clock.watching(targets):
            seconds, out = wall_seconds(run, device)
        clocks.append((seconds, clock))
    peak = request_peak_gib(device, out)
    split_total = statistics.median(s for s, _ in clocks)
    labels = dict.fromkeys(label for _, clock in clocks for label in clock.seconds)
    parts = {label: statistics.median(c.seconds.get(label, 0.0) for _, c in clocks) * 1e3 for label in labels}
    parts["other"] = split_total * 1e3 - sum(parts.values())  # host work, glue, output copies
    report = {
        "total_ms": (statistics.median(totals) if totals else split_total) * 1e3,
        "total_ms_all": [s * 1e3 for s in totals],
        "split_run_total_ms": split_total * 1e3,
        "split_ms": parts,
        "calls": dict(clocks[-1][1].calls),
        "peak_gib": peak,
    }
    return report, out
