"""LoRA on LTX-2 against diffusers' load_lora_weights (PEFT, applied unfused at run time), both file layouts;
and the peak memory of a two-stage run against a one-stage run of the same size (no second transformer)."""

from __future__ import annotations

import pytest
import torch
from ltx2_reference import load_diffusers_ltx2, run_diffusers
from test_ltx2_stages import PROMPT, engine, stage_one_latents

from helpers.ltx2 import distilled_lora, stages_folder
from helpers.metrics import max_abs
from helpers.thresholds import check_at_most

GROUP = "ltx2_stages"
REQUEST = dict(**PROMPT, height=64, width=96, num_frames=9, num_inference_steps=2, sigmas=[1.0, 0.5])
REQUEST.update(
    guidance_scale=3.0, audio_guidance_scale=7.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0
)
REQUEST.update(audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0, seed=5)


def diffusers_layout_lora(path, version: str) -> None:
    """A PEFT-layout LoRA (transformer.* keys) with lora_alpha=8 != rank 4, saved by diffusers itself, on
    attention and feed-forward projections of both blocks."""
    from diffusers import LTX2Pipeline

    generator = torch.Generator().manual_seed(11)
    transformer = engine(version).pipeline.components.transformer
    modules = [
        "transformer_blocks.0.attn1.to_q",
        "transformer_blocks.1.ff.net.2",
        "transformer_blocks.1.audio_attn2.to_v",
    ]
    layers = {}
    for name in modules:
        out_features, in_features = transformer.get_submodule(name).weight.shape
        layers[f"{name}.lora_A.weight"] = torch.randn(4, in_features, generator=generator) * 0.3
        layers[f"{name}.lora_B.weight"] = torch.randn(out_features, 4, generator=generator) * 0.3
    metadata = {"r": 4, "lora_alpha": 8, "target_modules": sorted(modules)}
    LTX2Pipeline.save_lora_weights(
        str(path.parent),
        transformer_lora_layers=layers,
        weight_name=path.name,
        transformer_lora_adapter_metadata=metadata,
    )


@pytest.mark.parametrize("version", ["2.0", "2.3"])
@pytest.mark.parametrize("layout", ["diffusers", "official"])
def test_lora_matches_diffusers_load_lora_weights(layout: str, version: str, tmp_path) -> None:
    if layout == "diffusers":
        path = tmp_path / "style_lora.safetensors"
        diffusers_layout_lora(path, version)
        scale = 0.7
    else:
        path, scale = distilled_lora(stages_folder(version)), 0.5
    pipe = load_diffusers_ltx2(stages_folder(version), verbatim_sigmas=True)
    pipe.load_lora_weights(str(path), adapter_name="test")
    pipe.set_adapters(["test"], [scale])
    eng = engine(version)
    request = dict(REQUEST, pipeline="one-stage", output_type="latent")
    video, audio = stage_one_latents(dict(request, height=2 * REQUEST["height"], width=2 * REQUEST["width"]))
    request.update(latents=video, audio_latents=audio)
    reference_video, reference_audio = run_diffusers(
        pipe, {k: v for k, v in request.items() if k != "pipeline"}
    )
    eng.load_lora(path, scale)
    try:
        result = eng.generate(**request)
    finally:
        eng.unload_lora()
    plain_lora_free = eng.generate(**request).latents["video"]
    assert max_abs(plain_lora_free, reference_video) > 1e-3  # the LoRA matters at all
    for kind, reference in (("video", reference_video), ("audio", reference_audio)):
        measured = max_abs(result.latents[kind], reference)
        check_at_most(GROUP, "lora_vs_diffusers_max_abs", measured, f"{version} {layout} LoRA {kind}")


def peak_torch_bytes(fn) -> int:
    """Peak of live bytes of the torch CPU allocator during fn, from the profiler's allocation events
    (allocations and frees in time order). It counts tensors only, not Python or library memory."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events())
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def test_two_stage_peak_memory_within_10_percent_of_one_stage() -> None:
    eng = engine()
    size = dict(**PROMPT, height=384, width=384, num_frames=17, seed=2, output_type="latent")
    one = peak_torch_bytes(lambda: eng.generate(**size, pipeline="one-stage", num_inference_steps=2))
    two = peak_torch_bytes(lambda: eng.generate(**size, pipeline="two-stage", num_inference_steps=2))
    print(f"peak torch CPU bytes: one-stage {one / 2**20:.1f} MiB, two-stage {two / 2**20:.1f} MiB")
    assert two <= 1.10 * one, f"two-stage peak {two} > 1.1 x one-stage peak {one}"
