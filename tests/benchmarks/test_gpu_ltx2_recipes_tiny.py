"""`python -m benchmarks.gpu_ltx2_recipes --tiny` on the CPU: every code path of the GPU script (the five
pipelines on in-memory random components, media written and read, the report), in bfloat16 as on the GPU
(the float32 path is the parity tests'), so the one device run cannot fail on a typo or a dtype."""

import json
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def test_tiny_recipes_run_and_write_a_report(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "benchmarks.gpu_ltx2_recipes",
        "--tiny",
        "--device",
        "cpu",
        "--dtype",
        "bfloat16",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-ltx2-recipes-tiny.json")
    report = json.loads(path.read_text())
    assert not report.get("failures")
    pipelines = report["pipelines"]
    assert set(pipelines) == {"hq", "keyframe-interpolation", "ic-lora", "retake", "audio-to-video"}
    for name, entry in pipelines.items():
        assert entry["total_s"] > 0 and "decode" in entry["stage_timer_s"], name
    assert pipelines["hq"]["extrapolated_15_steps_s"] > pipelines["hq"]["total_s"]
    assert pipelines["retake"]["extrapolated_40_steps_s"] > pipelines["retake"]["total_s"]
    assert "denoise_stage_2" in pipelines["ic-lora"]["stage_timer_s"]
