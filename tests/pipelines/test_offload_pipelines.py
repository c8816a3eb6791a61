"""Offloaded runs equal resident runs bit for bit on the tiny models (the same kernels on the same data), with
blocks streaming and components moving by stage, and no module ever running on its host homes
(helpers.offload.guard_loaded); with LoRAs (fused at load, fused afterwards, stage 2's side LoRA), FP8, and
through the Engine's option (the plan printed, a budget too small named with the smallest that works)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditto import Engine
from ditto.errors import InvalidParameter

from helpers.offload import deep_ltx2, deep_qwen_image, guard_loaded, offloaded, resident, within_plan

LTX2 = dict(prompt="a red fox", seed=0, height=64, width=64, num_frames=9, num_inference_steps=2)
LTX2_LATENT = dict(LTX2, max_sequence_length=64, output_type="latent")
QWEN = dict(prompt="a red fox", negative_prompt="blurry", height=32, width=32, num_inference_steps=2)
QWEN_LATENT = dict(QWEN, max_sequence_length=16, output_type="latent", seed=0)
KLEIN = dict(prompt="a red fox", seed=0, height=64, width=64, num_inference_steps=2, max_sequence_length=32)


def same(first, second) -> bool:
    if first.latents is not None:
        return all(torch.equal(first.latents[k], second.latents[k]) for k in first.latents)
    arrays = [(first.frames, second.frames), (first.audio, second.audio), (first.images, second.images)]
    return all(np.array_equal(a, b) for a, b in arrays if a is not None)


def streamed(plan, component: str = "transformer") -> set[str]:
    return {stage.name for stage in plan.stages if stage.streamed.get(component)}


@pytest.fixture(scope="module")
def ltx2_resident():
    return resident(deep_ltx2())


def test_ltx2_two_stage_streams_blocks_with_the_side_lora_and_equals_resident(ltx2_resident) -> None:
    expected = ltx2_resident.generate(**LTX2_LATENT)
    engine, plan = offloaded(deep_ltx2(), 1000, LTX2_LATENT)
    assert streamed(plan) == {"denoise_stage_1", "denoise_stage_2"}
    residency = engine.pipeline.components.residency
    guard_loaded(residency)
    for _ in range(2):  # a second request: the side factors prepared once, the same residency again
        assert same(engine.generate(**LTX2_LATENT), expected)
    within_plan(residency)
    # Stage 2's resident blocks carried their LoRA factors: the blocks were larger than stage 1's.
    assert residency.weight_peaks["denoise_stage_2"] > residency.weight_peaks["denoise_stage_1"]
    # Where the budget holds both, stage 1's transformer part arrives while the prompts are encoded.
    text = sum(plan.sizes[name].total for name in ("text_encoder", "connectors"))
    assert residency.weight_peaks["encode_text"] > text


def test_ltx2_components_move_by_stage_through_decode(ltx2_resident) -> None:
    expected = ltx2_resident.generate(**LTX2)
    engine, plan = offloaded(deep_ltx2(), None, LTX2)  # the smallest budget: decoding binds
    residency = engine.pipeline.components.residency
    guard_loaded(residency)
    assert same(engine.generate(**LTX2), expected)
    decode = plan.stage("decode")
    assert "vae" in decode.loaded and "transformer" not in decode.loaded  # the transformer left the device
    within_plan(residency)


def test_ltx2_loras_fused_at_load_and_afterwards(tmp_path) -> None:
    from ditto.tiny.ltx2 import build_tiny_distilled_lora, transformer_config

    lora = tmp_path / "user.safetensors"
    build_tiny_distilled_lora(lora, "2.0", transformer_config("2.0", 6))
    request = dict(LTX2_LATENT, pipeline="one-stage")
    reference = resident(deep_ltx2(), loras=[f"{lora}:0.5"])
    engine, plan = offloaded(deep_ltx2(), None, request, loras=[f"{lora}:0.5"])
    assert streamed(plan) == {"denoise"}
    guard_loaded(engine.pipeline.components.residency)
    assert same(engine.generate(**request), reference.generate(**request))
    # Fused after offloading: into the weights at their homes and into the ones on the device alike.
    reference.load_lora(lora, 0.3)
    engine.load_lora(lora, 0.3)
    assert same(engine.generate(**request), reference.generate(**request))
    reference.unload_lora()
    engine.unload_lora()
    assert same(engine.generate(**request), reference.generate(**request))


def test_ltx2_fp8_blocks_stream_and_equal_resident_fp8() -> None:
    request = dict(LTX2_LATENT, pipeline="one-stage")
    reference = resident(deep_ltx2(), quantization="fp8")
    engine, plan = offloaded(deep_ltx2(), None, request, quantization="fp8")
    assert streamed(plan) == {"denoise"}
    guard_loaded(engine.pipeline.components.residency)
    assert same(engine.generate(**request), reference.generate(**request))


def test_ltx2_fused_distilled_lora_is_refused_with_offload() -> None:
    engine = Engine.from_pretrained(deep_ltx2(), distilled_lora_mode="fuse")
    from ditto.acceleration.offload import OffloadRequest, enable_offload

    with pytest.raises(InvalidParameter, match='distilled_lora_mode="side"'):
        enable_offload(
            engine.pipeline, torch.device("cpu"), OffloadRequest("cpu", 2**20, "1MiB"), LTX2_LATENT
        )


def test_qwen_image_true_cfg_streams_and_equals_resident() -> None:
    reference = resident(deep_qwen_image())
    engine, plan = offloaded(deep_qwen_image(), None, QWEN_LATENT)
    assert streamed(plan) == {"denoise"}
    guard_loaded(engine.pipeline.components.residency)
    assert same(engine.generate(**QWEN_LATENT), reference.generate(**QWEN_LATENT))
    # The whole request, decoding included, at the smallest budget for it.
    engine, _ = offloaded(deep_qwen_image(), None, dict(QWEN, seed=0))
    guard_loaded(engine.pipeline.components.residency)
    assert same(engine.generate(**QWEN, seed=0), reference.generate(**QWEN, seed=0))


def test_klein_streams_its_text_encoder_layers_and_blocks() -> None:
    request = dict(KLEIN, output_type="latent")
    reference = resident("tiny-flux2-klein")
    engine, plan = offloaded("tiny-flux2-klein", None, request)
    assert streamed(plan) == {"denoise"} and streamed(plan, "text_encoder") == {"encode_text"}
    assert engine.pipeline.components.text_encoder.cuda_graphs is False  # its weights move now
    guard_loaded(engine.pipeline.components.residency)
    assert same(engine.generate(**request), reference.generate(**request))


def test_klein_drops_its_text_encoders_kept_graphs_when_offload_moves_weights() -> None:
    """The text encoder's graphs are kept across requests and read its weights by address: turning offload
    off (or re-planning) moves every weight, so graphs recorded before must go, not replay stale addresses."""
    from ditto.acceleration.cuda_graph import PassGraphs
    from ditto.acceleration.offload.setup import disable_offload

    engine, _ = offloaded("tiny-flux2-klein", None, dict(KLEIN, output_type="latent"))
    text_encoder = engine.pipeline.components.text_encoder
    text_encoder.graphs = PassGraphs(enabled=False)  # stands for graphs recorded while offloaded
    disable_offload(engine.pipeline)
    assert text_encoder.graphs is None


def test_engine_option_prints_the_plan_and_names_the_smallest_budget(capsys) -> None:
    with pytest.raises(InvalidParameter) as error:
        Engine.from_pretrained("tiny-ltx2", max_gpu_memory="64KiB", plan_for=LTX2)
    message = str(error.value)
    assert "max_gpu_memory='64KiB' is too small for ltx2" in message
    smallest = message.split('max_gpu_memory="')[1].split('"')[0]
    engine = Engine.from_pretrained("tiny-ltx2", max_gpu_memory=smallest, plan_for=LTX2)
    printed = capsys.readouterr().err
    assert f"offload plan for ltx2 within {engine.offload_plan.budget / 2**20:.1f} MiB" in printed
    assert "encode_text" in printed and "decode" in printed
    assert same(engine.generate(**LTX2), resident("tiny-ltx2").generate(**LTX2))


def test_engine_option_errors() -> None:
    with pytest.raises(InvalidParameter, match="offload='disk' is not supported"):
        Engine.from_pretrained("tiny-ltx2", offload="disk")
    with pytest.raises(InvalidParameter, match="needs max_gpu_memory"):
        Engine.from_pretrained("tiny-ltx2", offload="cpu")
    with pytest.raises(InvalidParameter, match='or let ditto move weights \\(offload="cpu"\\)'):
        Engine.from_pretrained("tiny-ltx2", offload="none", max_gpu_memory="1MiB")
    with pytest.raises(InvalidParameter, match="is not a memory size"):
        Engine.from_pretrained("tiny-ltx2", max_gpu_memory="a lot")


def test_a_request_larger_than_the_plan_is_refused_before_running() -> None:
    engine, _ = offloaded("tiny-ltx2", 1200, dict(LTX2_LATENT, pipeline="one-stage"))
    with pytest.raises(InvalidParameter, match="too small for this request's"):
        engine.generate(**dict(LTX2_LATENT, height=512, width=768, num_frames=121))


def test_a_step_cache_inside_offload_moves_only_the_blocks_it_computes(ltx2_resident) -> None:
    request = dict(LTX2_LATENT, pipeline="one-stage", num_inference_steps=4)
    cached = dict(request, cache="mask:compute=0+2,Fn=1,Bn=1")  # steps 1 and 3 skip blocks 1-4 of 6
    engine, plan = offloaded(deep_ltx2(), None, request)
    assert streamed(plan) == {"denoise"}
    guard_loaded(engine.pipeline.components.residency)
    mover = engine.pipeline.components.residency.mover
    assert same(engine.generate(**cached), ltx2_resident.generate(**cached))
    moved = mover.moved_bytes
    engine.generate(**cached)
    with_cache = mover.moved_bytes - moved
    engine.generate(**request)
    without = mover.moved_bytes - moved - with_cache
    # Two skipping steps, each of their whole passes leaving out blocks 1-4: with STG the CFG pair runs as
    # two calls (cond, uncond), then modality isolation (pipelines/ltx2/denoise.py). The STG pass resumes
    # from the conditional one at its perturbed block, 5 here, in the tail (Bn=1), so in both runs it moves
    # block 5 alone.
    from ditto.pipelines.ltx2.denoise import Passes

    passes = Passes.of(*engine.validate(**request).guiders(), num_blocks=6)
    assert passes.perturbed and passes.branch_at == 5
    calls = 1 + passes.uncond + passes.isolated
    skipped = [i for i in plan.stage("denoise").streamed["transformer"] if 1 <= i < 5]
    block = plan.sizes["transformer"].blocks
    assert skipped and without - with_cache == 2 * calls * sum(block[i] for i in skipped)


def test_replanning_and_turning_offload_off_keep_the_numbers(ltx2_resident) -> None:
    from ditto.acceleration.offload import OffloadRequest, enable_offload
    from ditto.acceleration.offload.setup import disable_offload

    expected = ltx2_resident.generate(**LTX2_LATENT)
    engine, _ = offloaded(deep_ltx2(), 1000, LTX2_LATENT)
    assert same(engine.generate(**LTX2_LATENT), expected)  # the side factors get their homes here
    residency = engine.pipeline.components.residency
    store_bytes = residency.mover.store.nbytes
    enable_offload(
        engine.pipeline, torch.device("cpu"), OffloadRequest("cpu", 1400 * 1024, "1400KiB"), LTX2_LATENT
    )
    assert engine.pipeline.components.residency.mover.store is residency.mover.store  # re-planned in place
    assert same(engine.generate(**LTX2_LATENT), expected)
    assert residency.mover.store.nbytes == store_bytes  # no second copy of any weight or factor
    disable_offload(engine.pipeline)
    assert engine.pipeline.components.residency is None
    assert residency.block_feature not in engine.pipeline.loop_features
    assert same(engine.generate(**LTX2_LATENT), expected)
