"""Side-by-side CPU timing of ditto and a reference pipeline on tiny checkpoints (pipeline overhead, not kernels)."""

from __future__ import annotations

import datetime
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.driver import current_commit


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed_pair(
    ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and process-CPU seconds of each, runs interleaved so load from elsewhere hits both alike."""
    ours(), theirs()  # warm-up: first calls pay one-off lazy initialisation in both libraries
    samples: dict[str, list[tuple[float, float]]] = {"ours": [], "theirs": []}
    for _ in range(repeats):
        for key, fn in (("ours", ours), ("theirs", theirs)):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            samples[key].append((time.perf_counter() - wall, time.process_time() - cpu))
    ours_s, theirs_s = (
        {
            "wall_s": statistics.median(s[0] for s in samples[k]),
            "cpu_s": statistics.median(s[1] for s in samples[k]),
        }
        for k in ("ours", "theirs")
    )
    return ours_s, theirs_s


def pair_result(ours: dict[str, float], theirs: dict[str, float]) -> dict[str, Any]:
    return {
        "ditto": ours,
        "diffusers": theirs,
        "speedup_wall": theirs["wall_s"] / ours["wall_s"],
        "speedup_cpu": theirs["cpu_s"] / ours["cpu_s"],
    }


def report_header(benchmark: str, threads: int, repeats: int) -> dict[str, Any]:
    """Machine, versions, commit and date for a tiny CPU benchmark's JSON."""
    return {
        "benchmark": benchmark,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": current_commit(),
        "cpu": cpu_name(),
        "cpu_count": torch.get_num_threads(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "diffusers": __import__("diffusers").__version__,
        "transformers": __import__("transformers").__version__,
        "repeats": repeats,
        "note": "median of repeats after one warm-up; the machine may be shared, cpu_s is less sensitive to that",
    }


def write_report(out: str | Path, benchmark: str, threads: int, repeats: int, cases: dict[str, Any]) -> None:
    """The header plus the cases, as indented JSON at `out`."""
    import json

    report = {**report_header(benchmark, threads, repeats), "cases": cases}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
