"""Tiny FLUX.2 Klein on the CPU: ditto and diffusers side by side in one process, same folder and seed.

    .venv/bin/python -m benchmarks.tiny_cpu_flux2 [--repeats 5] [--out benchmarks/results/flux2-klein-tiny-cpu.json]

Reports the median wall and process-CPU seconds of one generate() per case and diffusers/ditto ratios.
The tiny model is random and small, so this measures pipeline overhead, not GPU kernels.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.harness.cpu_timing import pair_result, timed_pair, write_report

THREADS = 2
CASES = {
    "t2i_64px_4steps": (
        "distilled",
        dict(prompt="a red fox in the snow", height=64, width=64, num_inference_steps=4),
    ),
    "t2i_batch2_128px": (
        "distilled",
        dict(prompt=["a cat", "a dog on a beach"], height=128, width=128, num_inference_steps=4),
    ),
    "base_cfg_64px_8steps": (
        "base",
        dict(prompt="a red fox", height=64, width=64, num_inference_steps=8, guidance_scale=4.0),
    ),
    "edit_2refs_64px": ("distilled", dict(prompt="combine them", height=64, width=64, num_inference_steps=4)),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/flux2-klein-tiny-cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)

    from diffusers import Flux2KleinPipeline

    from ditto.engine import Engine
    from ditto.tiny.flux2 import build_tiny_flux2_klein

    refs = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    from PIL import Image

    ref_images = [Image.fromarray((r.permute(1, 2, 0).numpy() * 255).astype("uint8")) for r in refs]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        loaded = {}
        for variant in ("distilled", "base"):
            folder = Path(tmp) / variant
            build_tiny_flux2_klein(folder, distilled=variant == "distilled")
            reference = Flux2KleinPipeline.from_pretrained(str(folder), dtype=torch.float32)
            reference.set_progress_bar_config(disable=True)
            loaded[variant] = (Engine.from_pretrained(folder, device="cpu", dtype="float32"), reference)
        for name, (variant, kwargs) in CASES.items():
            kwargs = dict(kwargs, image=ref_images) if name.startswith("edit") else kwargs
            engine, reference = loaded[variant]
            ours, theirs = timed_pair(
                lambda e=engine, k=kwargs: e.generate(**k, seed=0, output_type="np"),
                lambda r=reference, k=kwargs: r(
                    **k, generator=torch.Generator("cpu").manual_seed(0), output_type="np"
                ),
                args.repeats,
            )
            results[name] = pair_result(ours, theirs)
            print(
                f"{name}: ditto {ours['wall_s']:.3f}s, diffusers {theirs['wall_s']:.3f}s, "
                f"speedup {results[name]['speedup_wall']:.2f}x wall / {results[name]['speedup_cpu']:.2f}x cpu"
            )
    write_report(
        args.out,
        "flux2-klein tiny random checkpoint, CPU float32, generate() incl. text encoding and decode",
        THREADS,
        args.repeats,
        results,
    )


if __name__ == "__main__":
    main()
