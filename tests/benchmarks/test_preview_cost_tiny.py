"""`python -m benchmarks.preview_cost --full-smoke` on the CPU: every code path of the preview-cost benchmark
(the grids, the tiny jobs with and without previews, the full-size LTX-2 path with tiny configs)."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.preview_cost import GRIDS, TINY

CHECKOUT = Path(__file__).resolve().parents[2]


def test_preview_cost_benchmark_runs_and_writes_a_report(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.preview_cost", "--device", "cpu", "--full-smoke", "--pairs", "1",
               "--repeats", "2", "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-preview-cost-tiny.json")
    report = json.loads(path.read_text())
    assert len(report["grids"]) == len(GRIDS)
    assert all(row["learned_ms"] > 0 and row["false_colours_ms"] > 0 for row in report["grids"].values())
    assert set(report["tiny_jobs"]) == set(TINY)
    for row in [*report["tiny_jobs"].values(), report["full_ltx2"]]:
        assert row["preview_ms"] > 0 and len(row["extra_wall_ms_per_step_all"]) == 1
