"""Tiny Qwen-Image on the CPU: ditto and diffusers side by side in one process, same folder and seed.

    .venv/bin/python -m benchmarks.tiny_cpu_qwen_image

Writes benchmarks/results/qwen-image-tiny-cpu.json. Random tiny weights: this measures pipeline overhead
(the real model's cost is on the GPU), and checks that both give the same latents.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch

REPEATS = 5
CASE = dict(
    prompt="a red fox in the snow", negative_prompt="blurry", true_cfg_scale=4.0, height=128, width=128,
    num_inference_steps=8,
)  # fmt: skip


def best_of(run) -> float:
    run()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from diffusers import QwenImagePipeline

    from ditto.pipelines.qwen_image import QwenImagePipeline as Ditto
    from ditto.tiny.qwen_image import build_tiny_qwen_image

    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp()) / "tiny-qwen-image"
    build_tiny_qwen_image(folder)
    reference = QwenImagePipeline.from_pretrained(str(folder))
    reference.set_progress_bar_config(disable=True)
    ours = Ditto.from_pretrained(folder, torch.device("cpu"), None)

    def run_reference():
        return reference(**CASE, generator=torch.Generator("cpu").manual_seed(0), output_type="np").images

    def run_ours():
        with torch.inference_mode():
            return ours.generate(**CASE, seed=0, output_type="np").images

    diff = float(abs(run_reference() - run_ours()).max())
    t_ref, t_ours = best_of(run_reference), best_of(run_ours)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {
        "benchmark": "qwen-image tiny, CPU float32, 1 thread, true CFG, 128x128, 8 steps, best of 5",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "torch": torch.__version__,
        "diffusers_s": round(t_ref, 4),
        "ditto_s": round(t_ours, 4),
        "speedup": round(t_ref / t_ours, 3),
        "images_max_abs_diff": diff,
    }
    out = Path(__file__).resolve().parent / "results" / "qwen-image-tiny-cpu.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
