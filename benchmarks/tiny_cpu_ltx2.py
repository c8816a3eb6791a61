"""Tiny LTX-2 on the CPU: ditto and diffusers' LTX2Pipeline side by side in one process, same folder and settings.

    .venv/bin/python -m benchmarks.tiny_cpu_ltx2 [--repeats 3] [--out benchmarks/results/ltx2-tiny-cpu.json]

Case "default" is `make run`: the embedded tiny model at the official defaults (768x512x121, 40 steps, CFG +
STG + modality isolation + rescale: 4 transformer passes a step); diffusers gets the same settings spelled
out. The tiny model is random and small, so this measures pipeline overhead and the VAE, not GPU kernels.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.harness.cpu_timing import pair_result, timed_pair, write_report

THREADS = 2
SHARED = ("prompt", "negative_prompt", "height", "width", "num_frames", "frame_rate", "num_inference_steps")
GUIDANCE = (
    "guidance_scale", "stg_scale", "modality_scale", "guidance_rescale",
    "audio_guidance_scale", "audio_stg_scale", "audio_modality_scale", "audio_guidance_rescale",
)  # fmt: skip
CASES = {
    "default": dict(prompt="a red fox in the snow"),
    "cfg_only_256x256x25_8steps": dict(
        prompt="a red fox in the snow",
        height=256,
        width=256,
        num_frames=25,
        num_inference_steps=8,
        stg_scale=0.0,
        modality_scale=1.0,
        guidance_rescale=0.0,
        # Unset audio values keep the official audio defaults (STG 1, modality 3, rescale 0.7).
        audio_stg_scale=0.0,
        audio_modality_scale=1.0,
        audio_guidance_rescale=0.0,
    ),  # fmt: skip
}


def diffusers_kwargs(params) -> dict:
    """ditto's resolved parameters as diffusers' LTX2Pipeline keywords (the same names)."""
    values = dataclasses.asdict(params)
    kwargs = {k: values[k] for k in SHARED + GUIDANCE}
    kwargs["spatio_temporal_guidance_blocks"] = values["spatio_temporal_guidance_blocks"]
    return kwargs


def stage_split(engine, kwargs: dict) -> dict[str, float]:
    return dict(engine.generate(**kwargs, seed=0).timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/ltx2-tiny-cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)

    from diffusers import LTX2Pipeline

    from ditto.engine import Engine, resolve_model

    engine = Engine.from_pretrained("tiny-ltx2", device="cpu", dtype="float32")
    _, folder = resolve_model("tiny-ltx2")  # the cached embedded checkpoint ditto just loaded
    reference = LTX2Pipeline.from_pretrained(str(folder), dtype=torch.float32)
    reference.set_progress_bar_config(disable=True)
    results = {}
    for name, kwargs in CASES.items():
        theirs_kwargs = diffusers_kwargs(engine.validate(**kwargs))
        ours, theirs = timed_pair(
            lambda k=kwargs: engine.generate(**k, seed=0),
            lambda k=theirs_kwargs: reference(**k, generator=torch.Generator().manual_seed(0)),
            args.repeats,
        )
        results[name] = {**pair_result(ours, theirs), "ditto_stages_s": stage_split(engine, kwargs)}
        results[name]["settings"] = {k: v for k, v in theirs_kwargs.items() if k != "negative_prompt"}
        print(f"{name}: ditto {ours['wall_s']:.2f} s, diffusers {theirs['wall_s']:.2f} s", flush=True)
    write_report(
        args.out,
        "tiny-ltx2 (embedded default, random weights), CPU float32, generate() incl. text, decode, audio",
        THREADS,
        args.repeats,
        results,
    )


if __name__ == "__main__":
    main()
