"""STG prefix reuse (pipelines/ltx2/passes.py): the perturbed pass resumes from the conditional pass's streams at
its first perturbed block instead of running the blocks before it again. The result must be bit for bit the
one of the same four passes run whole, and the blocks before the branch must really not run twice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditto.runtime import PassKind

from helpers.ltx2 import FULL_GUIDANCE, PROMPT, denoise_loop, ditto_engine

SMALL = dict(**PROMPT, height=64, width=64, num_frames=9, num_inference_steps=2, pipeline="one-stage")
CASES = {
    "full guidance": {},
    "video STG only": dict(audio_stg_scale=0.0),
    "audio STG only": dict(stg_scale=0.0),
    "no CFG": dict(guidance_scale=1.0, audio_guidance_scale=1.0),
    "STG perturbing no block": dict(
        spatio_temporal_guidance_blocks=[], audio_spatio_temporal_guidance_blocks=[]
    ),
    "diffusers STG rule": dict(stg_rule="diffusers", audio_stg_scale=0.0),
    "skip_v2a": dict(skip_v2a_cross_attn_for_video_gt=True),
}


class BlockCounter:
    """Logs (kinds, first block, blocks run) of every pass of the loop."""

    handles_resumed_plans = True

    def __init__(self, log: list) -> None:
        self.log = log

    def run_blocks(self, plan, streams, ctx, inner):
        self.log.append((ctx.kinds, plan.first, len(plan)))
        return inner(plan, streams, ctx)


def run(request: dict, share_prefix: bool, sampler: str = "euler", log: list | None = None, version="2.0"):
    features = [BlockCounter(log)] if log is not None else []
    return denoise_loop(ditto_engine(version).pipeline, request, share_prefix, features, sampler)


def assert_bitwise(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y), f"max abs {(x - y).abs().max().item():.3e}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_prefix_reuse_changes_no_bit(case: str) -> None:
    request = {**SMALL, **FULL_GUIDANCE, **CASES[case]}
    assert_bitwise(run(request, share_prefix=True), run(request, share_prefix=False))


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_prefix_reuse_changes_no_bit_with_res2s_and_an_image(version: str) -> None:
    picture = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    request = {**SMALL, **FULL_GUIDANCE, "image": [picture, (picture, 8, 0.6)], "image_crf": 0}
    for sampler in ("euler", "res2s"):
        shared = run(request, True, sampler, version=version)
        assert_bitwise(shared, run(request, False, sampler, version=version))


def test_the_perturbed_pass_runs_only_the_blocks_after_the_branch() -> None:
    """The tiny model has 2 blocks and perturbs block 1: with reuse the STG pass runs block 1 alone."""
    shared: list = []
    whole: list = []
    run({**SMALL, **FULL_GUIDANCE}, True, log=shared)
    run({**SMALL, **FULL_GUIDANCE}, False, log=whole)
    cond, uncond, perturbed, isolated = ((kind,) for kind in PassKind)
    step = [(cond, 0, 2), (perturbed, 1, 1), (uncond, 0, 2), (isolated, 0, 2)]  # STG beside its prefix
    assert shared == step * 2
    assert whole == [(kinds, 0, 2) for kinds, _, _ in step] * 2


def test_what_shares_no_prefix_runs_whole() -> None:
    """A perturbation at block 0 shares nothing: every pass runs whole (and the CFG pair stays one batch);
    a perturbation at no block makes the STG pass the conditional pass itself (no call at all)."""
    first_block: list = []
    run({**SMALL, **FULL_GUIDANCE, "audio_spatio_temporal_guidance_blocks": [0]}, True, log=first_block)
    pair = (PassKind.UNCOND, PassKind.COND)
    assert first_block[:3] == [(pair, 0, 2), ((PassKind.PERTURBED,), 0, 2), ((PassKind.ISOLATED,), 0, 2)]
    nowhere: list = []
    blocks = dict(spatio_temporal_guidance_blocks=[], audio_spatio_temporal_guidance_blocks=[])
    run({**SMALL, **FULL_GUIDANCE, **blocks}, True, log=nowhere)
    assert [kinds for kinds, _, _ in nowhere[:3]] == [
        (PassKind.COND,),
        (PassKind.UNCOND,),
        (PassKind.ISOLATED,),
    ]


class PositionalFeature:
    """A feature that does not say it handles resumed plans (as a step cache splitting plans by position)."""

    def __init__(self, log: list) -> None:
        self.log = log

    def run_blocks(self, plan, streams, ctx, inner):
        self.log.append((ctx.kinds, plan.first, len(plan)))
        return inner(plan, streams, ctx)


def test_a_feature_that_does_not_handle_resumed_plans_gets_whole_passes() -> None:
    pipeline = ditto_engine("2.0").pipeline
    log: list = []
    pipeline.loop_features.append(lambda info: PositionalFeature(log))
    try:
        ditto_engine("2.0").generate(**SMALL, **FULL_GUIDANCE, output_type="latent")
    finally:
        pipeline.loop_features.clear()
    assert log and all(first == 0 and blocks == 2 for _, first, blocks in log)
    assert ((PassKind.PERTURBED,), 0, 2) in log
