"""Run several models' variants, write one JSON (GPU, versions, commit, every run) and print a table.

Shared by `benchmarks/gpu_transformers.py` and `ditto bench`.
"""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.measure import Variant, add_ratios, run_case, table
from benchmarks.harness.specs import ModelSpec, Shape

METHOD = (
    "CUDA events; first call + 1 warm-up, median of 5 (quick ablations: 1 + 3); bf16; "
    "weights shared by both models (N(0, 0.02) unless loaded from a folder); "
    "parity vs diffusers eager on the same inputs"
)


def current_commit() -> str:
    """The checkout's commit when run from a git clone, else the package version."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if done.returncode == 0:
            return done.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    from ditto import __version__

    return f"ditto {__version__}"


def environment(device: torch.device, commit: str, preset: str) -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    header: dict[str, Any] = {
        "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python": sys.version.split()[0], "commit": commit, "date": datetime.date.today().isoformat(),
        "preset": preset, "method": METHOD,
    }  # fmt: skip
    try:
        import diffusers

        header["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    return header


def report_path(out_dir: str | Path, header: dict[str, Any], kind: str, tiny: bool = False) -> Path:
    """DIR/<date>-<gpu>-<kind>[-tiny].json for a report whose header came from `environment`; DIR is made."""
    gpu = header["gpu"].replace(" ", "-").replace("/", "-")
    out = Path(out_dir) / f"{header['date']}-{gpu}-{kind}{'-tiny' if tiny else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def new_file(path: Path) -> Path:
    """`path`, or `name-2.json`, `name-3.json`, ... where it exists: a report never overwrites another.
    The name is taken at once (an empty file), so a second run started meanwhile picks the next one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        candidate = path if attempt == 1 else path.with_name(f"{path.stem}-{attempt}{path.suffix}")
        try:
            candidate.touch(exist_ok=False)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free report name beside {path}")


def run_benchmark(
    cases: list[tuple[ModelSpec, list[Shape]]],
    variants: list[Variant],
    device: torch.device,
    out_dir: Path,
    *,
    preset: str = "custom",
    commit: str | None = None,
    profile: tuple[str, ...] = (),
    budget_s: float = 1e9,
    log: Callable[[str], None] = lambda line: print(line, flush=True),
) -> Path:
    """Measure every case; the JSON is rewritten after each variant so a killed run keeps its numbers."""
    header = environment(device, commit or current_commit(), preset)
    out = new_file(
        Path(out_dir) / f"{header['date']}-{header['gpu'].replace(' ', '-').replace('/', '-')}.json"
    )
    reports: list[dict[str, Any]] = []
    started = time.perf_counter()

    def save(report: dict[str, Any] | None = None) -> None:
        current = reports + ([report] if report is not None and report not in reports else [])
        for r in current:
            add_ratios(r)
        out.write_text(json.dumps({**header, "cases": current}, indent=1))

    save()  # the header at once: the name is taken and a killed run leaves a readable file
    for spec, shapes in cases:
        if time.perf_counter() - started > budget_s:
            log(f"skipping {spec.name}: over the {budget_s:.0f} s budget")
            continue
        report = run_case(spec, shapes, variants, device, profile_variants=profile, on_update=save, log=log)
        reports.append(report)
        save()
    log(table(reports))
    log(f"wrote {out} in {time.perf_counter() - started:.0f} s")
    return out
