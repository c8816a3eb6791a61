"""`python -m benchmarks.gpu_offload --tiny` on the CPU: every code path of the GPU script (building, resident
runs, offloading at a budget, re-planning, turning offload off to quantize, FP8 offloaded), so the one device
run cannot fail on a typo. CPU times are meaningless here; the report's shape and plans are checked."""

import json
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def test_tiny_offload_benchmark_runs_and_writes_a_report(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks.gpu_offload", "--tiny", "--device", "cpu", "--out", str(tmp_path),
        "--budgets", "min", "--qwen-budgets", "min", "--ltx2-steps", "3", "--qwen-steps", "3", "--fp8",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-offload-tiny.json")
    report = json.loads(path.read_text())
    assert not report.get("failures")
    ltx2, qwen = report["ltx2"]["variants"], report["qwen-image"]["variants"]
    assert set(ltx2) == {"bf16-resident", "bf16-min", "fp8-resident", "fp8-min"}
    assert set(qwen) == {"bf16-resident", "bf16-min"}
    for name, variant in {**ltx2, **qwen}.items():
        assert variant["steps"] == 3 and "per_step_s" in variant, name
        if not name.endswith("resident"):
            assert variant["plan"][0].startswith("offload plan for") and variant["moved_gib_timed_run"] > 0
            assert {"ratio", "ratio_limit", "ratio_met", "peak_within"} <= set(variant)
    assert "extrapolated_40_steps_s" in ltx2["bf16-min"] and "extrapolated_50_steps_s" in qwen["bf16-min"]
    assert {"denoise_stage_1", "upsample", "denoise_stage_2", "decode"} <= set(ltx2["fp8-min"]["stage_s"])
