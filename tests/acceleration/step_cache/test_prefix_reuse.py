"""The step cache with LTX-2's STG prefix reuse (float32 CPU, a 6-block tiny model): the STG pass resumes from
the conditional pass at its first perturbed block on computed steps, so a cached loop keeps the saving an
uncached one has. The outputs and the cache's decisions are bit for bit those of the same loop with every
STG pass run whole, wherever the branch falls: after the first Fn blocks, inside them, or in the last Bn."""

from __future__ import annotations

import pytest
import torch

from ditto import Engine
from ditto.acceleration.step_cache.feature import StepCache
from ditto.acceleration.step_cache.spec import parse_cache_spec
from ditto.runtime import PassKind

from helpers.ltx2 import FULL_GUIDANCE, BlockCounter, denoise_loop
from helpers.offload import deep_ltx2

STEPS = 5
REQUEST = {
    **FULL_GUIDANCE, "prompt": "a red fox", "negative_prompt": "blurry", "height": 64, "width": 64,
    "num_frames": 9, "num_inference_steps": STEPS, "pipeline": "one-stage", "seed": 3, "output_type": "latent",
    "spatio_temporal_guidance_blocks": [3], "audio_spatio_temporal_guidance_blocks": [3],
}  # fmt: skip
SPECS = {
    "mask, branch in the middle": "mask:compute=0-1+3,Fn=1,Bn=1",
    "dbcache, branch in the middle": "dbcache:Fn=1,Bn=0,threshold=0.6,warmup=1,max_cached=-1",
    "dbcache, branch inside Fn": "dbcache:Fn=4,Bn=0,threshold=0.6,warmup=1,max_cached=-1",
    "mask, branch inside Bn": "mask:compute=0+3,Fn=0,Bn=3",
    "taylorseer, branch in the middle": "dbcache:Fn=2,Bn=1,threshold=0.6,warmup=2,taylorseer=1",
}


def cached_loop(engine: Engine, spec: str, share_prefix: bool):
    parsed = parse_cache_spec(spec)
    record: dict = {}
    counter = BlockCounter()
    cache = StepCache(parsed, STEPS, parsed.thresholds[:2], record)
    out = denoise_loop(engine.pipeline, REQUEST, share_prefix, [cache, counter])
    return out, record, counter.blocks


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_pretrained(deep_ltx2(), device="cpu", dtype="float32")


@pytest.mark.parametrize("case", sorted(SPECS))
def test_a_cached_loop_with_prefix_reuse_is_the_loop_without_it(engine: Engine, case: str) -> None:
    shared, shared_record, shared_blocks = cached_loop(engine, SPECS[case], True)
    whole, whole_record, whole_blocks = cached_loop(engine, SPECS[case], False)
    for x, y in zip(shared, whole, strict=True):
        assert torch.equal(x, y), f"max abs {(x - y).abs().max().item():.3e}"
    assert shared_record == whole_record
    assert any(kind["cached"] for kind in shared_record.values())  # the cache did skip
    # The other passes run the same blocks; the STG pass leaves out the shared prefix on computed steps.
    perturbed = PassKind.PERTURBED
    assert {k: v for k, v in shared_blocks.items() if k != perturbed} == {
        k: v for k, v in whole_blocks.items() if k != perturbed
    }
    assert shared_blocks[perturbed] < whole_blocks[perturbed]


def test_the_stg_pass_of_a_computed_step_runs_from_its_branch(engine: Engine) -> None:
    """Mask F1B1 computing steps 0, 1, 3 of 5: on those the STG pass runs blocks 3-4 (its middle from the
    branch) and block 5 (the tail); on skipped ones the conditional pass taps nothing, so the STG pass runs
    its head (block 0) and tail (block 5) whole, as every other kind."""
    _, record, blocks = cached_loop(engine, SPECS["mask, branch in the middle"], True)
    assert record[PassKind.PERTURBED.value]["cached_steps"] == [2, 4]
    assert blocks[PassKind.PERTURBED] == 3 * (2 + 1) + 2 * (1 + 1)
    assert blocks[PassKind.COND] == 3 * 6 + 2 * 2
