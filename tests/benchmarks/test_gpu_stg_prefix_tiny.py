"""`python -m benchmarks.gpu_stg_prefix --tiny` on the CPU: the GPU script's every code path (so the one device
run cannot fail on a typo), and prefix reuse bit-equal to the whole passes there too."""

import json
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def test_tiny_run_writes_a_report_with_bitwise_equal_passes(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks.gpu_stg_prefix", "--tiny", "--device", "cpu", "--repeats", "1",
        "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-stg-prefix-2.0-tiny.json")
    report = json.loads(path.read_text())
    (row,) = report["sizes"].values()
    assert set(row["ms"]) == {"pair", "four-whole", "four-shared"}
    assert row["shared_equals_whole_bitwise"] is True
    assert row["pair_vs_whole_max_abs"] < 1e-5  # a batched row may round differently, nothing more
    assert report["benchmark"] == "stg-prefix-reuse" and report["commit"]
