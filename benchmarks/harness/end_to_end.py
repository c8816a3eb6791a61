"""Whole-pipeline runs for benchmarks/gpu_pipelines.py: FLUX.2 Klein (ditto beside diffusers) and LTX-2
two-stage (ditto), each built once, every variant timed in the same process.

Each runner fills a JSON-ready dict and calls `save()` after every variant, so a run cut short by a time
limit still leaves every finished number on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmarks.harness.stage_clock import measure, wall_seconds

PROMPT = "a red fox trotting through fresh snow at dawn, soft light, shallow depth of field"
Save = Callable[[], None]


@dataclass(frozen=True)
class Settings:
    device: torch.device
    dtype: torch.dtype
    tiny: bool
    compile: bool  # also run the regional-compiled variants
    repeats: int  # Klein: timed runs per variant (median)
    ltx2_steps: int  # stage-1 steps of the timed LTX-2 runs
    ltx2_eager: bool  # also time LTX-2 without compile
    fp8: bool  # also time ditto compiled with FP8 block products (after the bf16 variants)
    profile: bool  # torch.profiler kernel summary of the compiled variants
    deadline: float  # time.perf_counter() after which no new variant starts
    ltx2_repeats: int = 0  # LTX-2: plain timed runs before the split run (total: their median)
    only: str = ""  # LTX-2: time only the variants whose name contains this
    graphs: str = "off"  # LTX-2 compiled variants with CUDA-graphed passes: "off", "on" (only) or "both"


def _over(settings: Settings, section: dict[str, Any], name: str) -> bool:
    if time.perf_counter() < settings.deadline:
        return False
    section.setdefault("skipped", []).append(f"{name}: over the time budget")
    return True


def _images(out: Any) -> np.ndarray:
    """ditto's Result.images or diffusers' output .images, as one float array."""
    return np.asarray(out.images, dtype=np.float32)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def run_klein(settings: Settings, report: dict[str, Any], save: Save) -> None:
    from benchmarks.harness import full_size_flux2 as klein

    device, side = settings.device, 128 if settings.tiny else 1024
    started = time.perf_counter()
    pipes = klein.build_klein(device, settings.dtype, settings.tiny)
    section = report.setdefault("flux2-klein", {})
    section.update(
        case=f"text-to-image {side}x{side}, 4 steps (distilled, no CFG), 512 text tokens, batch 1",
        parameters=pipes.parameters, build_s=time.perf_counter() - started, variants={},
    )  # fmt: skip
    args = dict(prompt=PROMPT, height=side, width=side, num_inference_steps=4, guidance_scale=1.0)
    runs = {
        "ditto": lambda: pipes.ditto.generate(**args, seed=0),
        "diffusers": lambda: pipes.diffusers(
            **args, generator=torch.Generator("cpu").manual_seed(0), output_type="np"
        ),
    }
    images: dict[str, np.ndarray] = {}
    variants = [(lib, False, "") for lib in runs] + [(lib, True, "") for lib in runs if settings.compile]
    if settings.compile and settings.fp8:
        variants.append(("ditto", True, "-fp8"))  # last: the native blocks stay FP8 afterwards
    for library, compiled, suffix in variants:
        name = f"{library}-{'compiled' if compiled else 'eager'}{suffix}"
        if _over(settings, section, name):
            continue

        def variant(library: str = library, compiled: bool = compiled, name: str = name) -> None:
            from ditto.acceleration.fp8 import quantize_transformer
            from ditto.engine import compile_pipeline, enable_cuda_graphs

            if compiled:  # regional compile of the transformer (both libraries offer it), and what ditto's
                # compile=True adds: the shared VAE decoder (diffusers-compiled runs after, on the same VAE)
                # and the text encoder's layers (ditto's own Qwen3Model on the shared weights).
                if library == "ditto":
                    compile_pipeline(pipes.ditto)
                    enable_cuda_graphs(pipes.ditto, None, compiled=True)  # the text encoder's graphs
                else:
                    pipes.reference.compile_repeated_blocks(fullgraph=True, dynamic=False)
            if name.endswith("fp8"):
                quantize_transformer(pipes.native, keep_originals=False)
            first_s, _ = wall_seconds(runs[library], device)  # compiles, for compiled variants
            targets = klein.stage_targets(pipes, library)
            result, out = measure(runs[library], device, targets, 1, settings.repeats, settings.repeats)
            result["first_call_s"] = first_s
            if library == "ditto":
                result["ditto_stage_timer_ms"] = {k: v * 1e3 for k, v in out.timings.items()}
            images[name] = _images(out)
            section["variants"][name] = result
            print(f"[flux2-klein] {name:20s} {result['total_ms']:9.1f} ms  split {_fmt(result['split_ms'])}")
            if compiled and settings.profile:
                _profile(section, name, runs[library])

        _attempt(section, name, variant, save)
    section["ratios"] = _ratios(section["variants"])
    section["image_cosine"] = {
        f"{a} vs {b}": _cosine(images[a], images[b])
        for a, b in [
            ("ditto-eager", "diffusers-eager"),
            ("ditto-compiled", "diffusers-compiled"),
            ("ditto-compiled-fp8", "diffusers-compiled"),
        ]
        if a in images and b in images
    }
    save()


def _attempt(section: dict[str, Any], name: str, variant: Callable[[], None], save: Save) -> None:
    """Run one variant; a failure (say, out of memory) is recorded and the next variant still runs."""
    try:
        variant()
    except Exception as exc:  # noqa: BLE001
        section.setdefault("failures", {})[name] = f"{type(exc).__name__}: {exc}"[:3000]
        print(f"{name} FAILED: {type(exc).__name__}: {exc}"[:3000], flush=True)
    save()


def _profile(section: dict[str, Any], name: str, run: Callable[[], Any]) -> None:
    """Device time by kernel kind and the top kernels of one more run (torch.profiler)."""
    from benchmarks.harness.measure import profile

    totals, top = profile(run)
    section.setdefault("profiles", {})[name] = {"totals_ms": totals, "top": top}
    print(f"profile {name}: {totals}\n{top}", flush=True)


def _ratios(variants: dict[str, Any]) -> dict[str, float]:
    """diffusers time / ditto time (>1: ditto faster), same compile setting, and against diffusers eager."""
    ms = {name: v["total_ms"] for name, v in variants.items()}
    pairs = [
        ("diffusers-eager", "ditto-eager"),
        ("diffusers-compiled", "ditto-compiled"),
        ("diffusers-eager", "ditto-compiled"),
        ("diffusers-compiled", "ditto-compiled-fp8"),
    ]
    return {f"{a} / {b}": ms[a] / ms[b] for a, b in pairs if a in ms and b in ms}


def _fmt(split: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in split.items())


def run_models(
    runners: dict[str, Callable[..., None]],
    models: list[str],
    settings: Any,
    report: dict[str, Any],
    save: Save,
) -> None:
    """Each model's runner in turn, the device freed after each; one failing (say, out of memory) is recorded
    in the report and the next still runs."""
    for model in models:
        try:
            runners[model](settings, report, save)
        except Exception as exc:  # noqa: BLE001 (one model failing must not lose the other's numbers)
            report.setdefault("failures", {})[model] = f"{type(exc).__name__}: {exc}"[:3000]
            print(f"[{model}] FAILED: {type(exc).__name__}: {exc}"[:3000], flush=True)
            save()
        free_device(settings.device)
    save()


def free_device(device: torch.device) -> None:
    """Give the next model the whole card (call once the runner's frame, and any exception holding it, is gone)."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        print(f"after freeing: {torch.cuda.memory_allocated(device) / 2**30:.2f} GiB allocated", flush=True)


def ltx2_request(settings: Settings, steps: int) -> dict[str, Any]:
    """The peers' case: two-stage 768x512x121 at 24 fps, CFG 4 on video and audio, no STG/modality
    isolation (so one batched CFG pair per stage-1 step), the fixed 3 distilled steps in stage 2."""
    height, width, frames = (128, 192, 9) if settings.tiny else (512, 768, 121)
    return dict(
        prompt=PROMPT, height=height, width=width, num_frames=frames, frame_rate=24,
        num_inference_steps=steps, guidance_scale=4.0, stg_scale=0.0, modality_scale=1.0,
        guidance_rescale=0.0, audio_guidance_scale=4.0, audio_stg_scale=0.0, audio_modality_scale=1.0,
        audio_guidance_rescale=0.0, pipeline="two-stage", seed=0,
    )  # fmt: skip


def run_ltx2(settings: Settings, report: dict[str, Any], save: Save) -> None:
    from benchmarks.harness import full_size_ltx2 as ltx2

    device = settings.device
    started = time.perf_counter()
    pipe = ltx2.build_ltx2(device, settings.dtype, settings.tiny)
    c = pipe.components
    section = report.setdefault("ltx2", {})
    request = ltx2_request(settings, settings.ltx2_steps)
    lora = pipe.distilled.read()
    section.update(
        case="two-stage {width}x{height}x{num_frames}, CFG {guidance_scale}, stage 1 at half size".format(**request),
        request={k: v for k, v in request.items() if k != "prompt"},
        parameters={
            name: sum(p.numel() for p in getattr(c, name).parameters())
            for name in ("transformer", "text_encoder", "connectors", "vae", "audio_vae", "vocoder", "latent_upsampler")
        },
        lora={"rank": next(iter(lora.pairs.values())).down.shape[0], "modules": len(lora.pairs),
              "parameters": sum(p.down.numel() + p.up.numel() for p in lora.pairs.values())},
        build_s=time.perf_counter() - started, variants={}, tokens=_ltx2_tokens(pipe, request),
        distilled_lora_mode=pipe.distilled_lora_mode,
    )  # fmt: skip
    print(
        f"[ltx2] built in {section['build_s']:.0f} s: {section['parameters']}, tokens {section['tokens']}",
        flush=True,
    )
    save()
    # Compiled first (the figure of record); eager afterwards on the same modules, the compiled graphs set
    # aside by torch.compiler.set_stance("force_eager"), so one build serves both.
    variants = [("ditto-compiled", contextlib.nullcontext)] if settings.compile else []
    if settings.ltx2_eager:
        force_eager = settings.compile  # nothing compiled otherwise
        stance = (lambda: torch.compiler.set_stance("force_eager")) if force_eager else contextlib.nullcontext
        variants.append(("ditto-eager", stance))
    if settings.fp8 and settings.compile:
        variants.append(("ditto-compiled-fp8", contextlib.nullcontext))
    # Each compiled variant with CUDA graphs: after it ("both") or instead of it ("on").
    if settings.graphs != "off" and settings.compile:
        keep = settings.graphs == "both"
        variants = [
            v for name, stance in variants
            for v in [(name, stance)] * (keep or "compiled" not in name)
            + [(f"{name}-graphs", stance)] * ("compiled" in name)
        ]  # fmt: skip
    variants = [(name, stance) for name, stance in variants if settings.only in name]
    if settings.compile:
        from ditto.engine import compile_pipeline

        compile_pipeline(pipe)  # as compile=True does: blocks, VAE decoder, Gemma's layers
    for name, stance in variants:
        if _over(settings, section, name):
            continue

        def variant(name: str = name, stance: Callable[[], Any] = stance) -> None:
            from ditto.acceleration.fp8 import Fp8Linear, quantize_transformer

            c.transformer.cuda_graphs = name.endswith("-graphs")
            quantized = any(isinstance(m, Fp8Linear) for m in c.transformer.modules())
            if "fp8" in name and not quantized:
                # For good (the bf16 weights are freed): so the FP8 variants come last.
                quantize_transformer(c.transformer, keep_originals=False)
            with stance():
                _ltx2_variant(pipe, settings, section, name)
                if settings.profile and name.startswith("ditto-compiled"):
                    _profile(section, f"{name}, 2 steps", lambda: pipe.generate(**ltx2_request(settings, 2)))

        _attempt(section, name, variant, save)


def _ltx2_tokens(pipe: Any, request: dict[str, Any]) -> dict[str, int]:
    """Video tokens per sample in each stage and audio tokens, as the pipeline computes them: the check that
    the VAE's compression ratios (hence every shape the transformer sees) are the real ones."""
    full = pipe.latent_shape(pipe.validate(**request))
    half = dict(request, height=request["height"] // 2, width=request["width"] // 2, pipeline="one-stage")
    return {
        "denoise_stage_1": pipe.latent_shape(pipe.validate(**half)).video_tokens,
        "denoise_stage_2": full.video_tokens,
        "audio": full.audio_frames,
    }


def _ltx2_variant(pipe: Any, settings: Settings, section: dict[str, Any], name: str) -> None:
    """A 2-step warm-up (the same shapes: compiles both stages' graphs), then one timed run."""
    from benchmarks.harness import full_size_ltx2 as ltx2
    from ditto.acceleration import cuda_graph

    device, steps = settings.device, settings.ltx2_steps
    # [0]: the warm-up's result is dropped at once, as a server drops each result once written, so the
    # timed run reuses its page-locked output buffer (a fresh 570 MB one costs ~0.4 s, NOTES.md).
    warm_s = wall_seconds(lambda: pipe.generate(**ltx2_request(settings, 2)), device)[0]
    transformer = pipe.components.transformer
    # A graphed pass is recorded once: a device sync around each forward cannot be inside it.
    timed_forward = [] if transformer.cuda_graphs else [(transformer, "forward", "transformer")]
    targets = [*ltx2.stage_targets(pipe), *timed_forward]
    recorded = dataclasses.replace(cuda_graph.STATS)
    run = lambda: pipe.generate(**ltx2_request(settings, steps))  # noqa: E731
    result, out = measure(run, device, targets, 0, settings.ltx2_repeats)
    result["cuda_graph_recordings"] = cuda_graph.STATS.recordings - recorded.recordings
    result["cuda_graph_recording_s"] = cuda_graph.STATS.seconds - recorded.seconds
    stages = dict(out.timings)
    result.update(warmup_2_steps_s=warm_s, stage_timer_s=stages, stage_1_steps=steps)
    per_step = stages["denoise_stage_1"] / steps
    result["stage_1_s_per_step"] = per_step
    if steps != 40:  # said plainly in the JSON and the table: the 40-step figure is extrapolated
        result["extrapolated_40_steps_s"] = result["total_ms"] / 1e3 + (40 - steps) * per_step
    section["variants"][name] = result
    print(
        f"[ltx2] {name}: {result['total_ms'] / 1e3:.2f} s ({steps} steps), stages {stages}, "
        f"split ms {_fmt(result['split_ms'])}, peak {result['peak_gib']} GiB",
        flush=True,
    )
