"""The residency planner (acceleration/offload/plan.py) on given sizes and budgets: LTX-2's measured component
sizes (bf16, full size) at 24, 48 and 96 GiB, the smallest-budget error, offload="none", LoRA factors beside the
blocks, and the budget strings."""

from __future__ import annotations

import pytest

from ditto.acceleration.offload import format_bytes, parse_bytes
from ditto.acceleration.offload.plan import (
    RESERVE,
    SLOTS,
    Sizes,
    choose_resident,
    plan_offload,
    plan_stage,
    stage_floor,
)
from ditto.acceleration.offload.spec import Stage
from ditto.acceleration.offload.streaming import spread_order
from ditto.errors import InvalidParameter

GIB = 2**30
# LTX-2 19B in bf16, as measured from the published configs (component_sizes on the meta device).
BLOCK = int(0.772e9)
LAYER = int(0.448e9)
SIZES = {
    "text_encoder": Sizes(int(2.04e9), (LAYER,) * 48),
    "connectors": Sizes(int(2.86e9)),
    "transformer": Sizes(int(0.69e9), (BLOCK,) * 48),
    "vae": Sizes(int(2.44e9)),
    "vae_encoder": Sizes(int(1.39e9), part_of="vae"),
    "audio_vae": Sizes(int(0.11e9)),
    "vocoder": Sizes(int(0.22e9)),
    "latent_upsampler": Sizes(int(1.0e9)),
}
STAGES = (
    Stage("encode_text", ("text_encoder", "connectors"), int(1.6 * GIB)),
    Stage("denoise_stage_1", ("transformer",), int(2.9 * GIB), passes=40),
    Stage("upsample", ("latent_upsampler",), 48 * 2**20),
    Stage("denoise_stage_2", ("transformer",), int(2.5 * GIB), passes=3),
    Stage("decode", ("vae", "audio_vae", "vocoder"), int(6.2 * GIB)),
)


def test_budget_strings() -> None:
    assert parse_bytes("24GiB") == parse_bytes("24G") == parse_bytes("24 gib") == 24 * GIB
    assert parse_bytes("48GB") == 48 * 10**9 and parse_bytes("1.5GiB") == int(1.5 * GIB)
    assert parse_bytes(4096) == parse_bytes("4KiB") == 4096
    for bad in ("lots", "24XB", "-1GiB", 0, True):
        with pytest.raises(InvalidParameter, match="max_gpu_memory"):
            parse_bytes(bad)
    assert format_bytes(24 * GIB) == "24.0 GiB" and format_bytes(1536) == "1.5 KiB"


def test_a_budget_that_holds_everything_moves_nothing() -> None:
    plan = plan_offload("ltx2", SIZES, STAGES, 96 * GIB)
    assert set(plan.always) == set(SIZES)
    assert plan.moved_per_request() == 0
    assert all(not stage.streamed.get("transformer") for stage in plan.stages)


def test_24_gib_streams_the_transformer_and_gemma_and_moves_the_rest_by_stage() -> None:
    budget = 24 * GIB
    plan = plan_offload("ltx2", SIZES, STAGES, budget)
    stage_1, decode = plan.stage("denoise_stage_1"), plan.stage("decode")
    # Free for the blocks: the budget less the reserve, the activations and the transformer's fixed part.
    free = budget - int(budget * RESERVE) - int(2.9 * GIB) - int(0.69e9)
    assert "transformer" not in plan.always and "text_encoder" not in plan.always
    assert len(stage_1.resident["transformer"]) == (free - SLOTS * BLOCK) // BLOCK
    assert len(stage_1.resident["transformer"]) + len(stage_1.streamed["transformer"]) == 48
    assert plan.stage("encode_text").streamed["text_encoder"]  # Gemma's 24 GB do not fit with the rest
    assert "vae" in decode.loaded and "transformer" not in decode.loaded
    # Every stage within the budget: weights (stream slots included), activations, reserve.
    for stage in plan.stages:
        assert stage.weights + stage.workspace + plan.reserve <= budget
    # Small parts move per stage rather than cost the transformer blocks in every one of 43 passes.
    assert "connectors" not in plan.always and "latent_upsampler" not in plan.always


def test_48_gib_keeps_the_transformer_and_streams_gemma_once_per_request() -> None:
    plan = plan_offload("ltx2", SIZES, STAGES, 48 * GIB)
    assert "transformer" in plan.always
    assert not plan.stage("denoise_stage_1").streamed
    assert plan.stage("encode_text").streamed["text_encoder"]
    # Streaming Gemma's layers once per request beats bringing the 38 GB transformer back every request.
    assert plan.moved_per_request() < SIZES["transformer"].total


def test_the_smallest_budget_is_named_and_works() -> None:
    with pytest.raises(InvalidParameter) as error:
        plan_offload("ltx2", SIZES, STAGES, 6 * GIB, given="6GiB")
    smallest = max(stage_floor(stage, SIZES) for stage in STAGES)
    message = str(error.value)
    assert message.startswith("max_gpu_memory='6GiB' is too small for ltx2")
    shown = message.split('max_gpu_memory="')[1].split('"')[0]
    assert parse_bytes(shown) >= smallest
    plan = plan_offload("ltx2", SIZES, STAGES, parse_bytes(shown))
    assert plan.smallest == parse_bytes(shown)
    # At the smallest budget the decode stage (VAE and its activations) is the one that binds.
    with pytest.raises(InvalidParameter):
        plan_offload("ltx2", SIZES, STAGES, smallest - 2**20)


def test_offload_none_checks_the_budget_and_points_at_offload_cpu() -> None:
    assert plan_offload("ltx2", SIZES, STAGES, 96 * GIB, mode="none").mode == "none"
    with pytest.raises(InvalidParameter, match='offload="cpu"'):
        plan_offload("ltx2", SIZES, STAGES, 48 * GIB, mode="none")


def test_lora_factors_beside_the_blocks_make_fewer_blocks_resident() -> None:
    plain = Stage("denoise_stage_2", ("transformer",), int(2.5 * GIB), 3)
    side = Stage(
        "denoise_stage_2", ("transformer",), int(2.5 * GIB), 3, {"transformer": (int(0.154e9),) * 48}
    )
    without = plan_stage(plain, (), SIZES, 24 * GIB)
    with_lora = plan_stage(side, (), SIZES, 24 * GIB)
    assert len(with_lora.resident["transformer"]) < len(without.resident["transformer"])
    assert with_lora.streamed_bytes["transformer"] > without.streamed_bytes["transformer"]


def test_resident_blocks_are_spread_between_streamed_ones() -> None:
    assert spread_order(8)[:4] == [0, 4, 2, 6]
    assert sorted(spread_order(13)) == list(range(13))
    kept = choose_resident([10] * 8, 40)
    assert kept == (0, 2, 4, 6)  # every other block: each streamed block's copy overlaps a resident one
    # Larger blocks (FP8 keeps the first and last ones in bf16) are kept where they fit.
    assert choose_resident([20, 10, 10, 10, 20], 30) == (0, 2)
