"""benchmarks/gpu_parallel.py end to end on 2 CPU processes (torchrun, gloo) with tiny configs, so the GPU run
cannot fail on a typo; and the full-size Qwen-Image builder's configs on the meta device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def test_two_processes_report_both_times_the_split_and_the_latents_l2(tmp_path) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "benchmarks.gpu_parallel", "--tiny", "--device", "cpu", "--case", "ltx2-two-stage",
               "--repeats", "1", "--out", str(tmp_path)]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("*-parallel-ltx2-two-stage-2gpu.json")
    report = json.loads(path.read_text())
    assert report["gpus"] == 2 and report["one_gpu"]["total_s"] > 0 and report["n_gpus"]["total_s"] > 0
    assert {"encode_text", "denoise_stage_1", "denoise_stage_2", "decode"} <= set(report["n_gpus"]["split_s"])
    assert report["n_gpus"]["split_used"]["denoise_stage_2"] == {"cfg": 1, "sequence": 2}
    assert max(report["relative_l2"].values()) < 1e-5
    assert report["communication"]["comm_s"] > 0
    assert "speedup" in done.stdout


def test_full_size_qwen_image_pipeline_builds_on_the_meta_device() -> None:
    from benchmarks.harness.full_size_qwen import build_qwen_image

    pipe = build_qwen_image(torch.device("meta"), torch.bfloat16)
    c = pipe.components
    count = lambda module: sum(p.numel() for p in module.parameters()) / 1e9  # noqa: E731
    assert 20.0 < count(c.transformer) < 20.8  # Qwen-Image 20B
    assert 8.0 < count(c.text_encoder) < 8.5  # Qwen2.5-VL-7B with its vision tower
