"""`python -m benchmarks.gpu_step_cache --tiny` on the CPU: every code path of the GPU script (the numbers on a
shared CPU mean nothing; the device run is the lead's)."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.gpu_step_cache import mask_steps

CHECKOUT = Path(__file__).resolve().parents[2]


def test_the_mask_computes_40_percent_of_the_steps() -> None:
    assert mask_steps(40) == [0, 1, 2, 3, 4, 5, 6, 7, 11, 15, 19, 23, 27, 31, 35, 39]
    assert mask_steps(10) == [0, 1, 5, 9]


def test_tiny_step_cache_benchmark_runs_and_writes_a_report(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.gpu_step_cache", "--tiny", "--device", "cpu", "--steps", "4",
               "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-step-cache-tiny.json")
    report = json.loads(path.read_text())
    assert report["never_skip_bit_identical"] is True
    variants = report["variants"]
    # Conditional, unconditional, STG and isolation per step: with an STG pass the four run apart
    # (pipelines/ltx2/passes.py; without the cache the STG pass resumes from the conditional one).
    assert variants["no-cache"]["passes"] == 4 * 4
    assert variants["mask"]["cache_stats"]["denoise"]["cond"]["cached_steps"] == [1, 2]
    assert variants["dbcache-forced"]["cache_stats"]["denoise"]["cond"]["cached_steps"] == [2, 3]
    # Blocks run (2-block model, STG at block 1): uncached, cond + uncond + isolated 2 each and STG 1 (its
    # block after the branch) = 7 a step. F1B0 skipping steps 2 and 3: block 0 alone in each pass there
    # (the conditional pass taps nothing, so the STG pass runs its head whole) = 4 a step.
    assert variants["no-cache"]["blocks_run"] == 4 * 7
    assert variants["dbcache-forced"]["blocks_run"] == 2 * 7 + 2 * 4
    assert report["results"]["dbcache_predicted_saving"] == 1 - (2 * 7 + 2 * 4) / (4 * 7)
    assert set(report["results"]) >= {
        "mask_speedup_40_steps_extrapolated", "dbcache_saving_vs_prediction", "fixed_ms_per_pass", "ms_per_block"
    }  # fmt: skip
