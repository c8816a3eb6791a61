"""Fused QKV / KV projections (the GPU speed path) give the unfused outputs on the CPU, and keep the checkpoint."""

from __future__ import annotations

import copy

import pytest
import torch
from test_ltx2_transformer import CASES, LAYOUTS, _inputs, _randomize

from ditto.models.ltx2 import LTX2Transformer

# Fusing changes only how the products are grouped: one [3n, k] matrix instead of three [n, k] ones.
# float32 CPU kernels may block the longer matrix differently, so allow rounding, not more.
TOLERANCE = 1e-5


@pytest.fixture(scope="module", params=["2.0-split-stg", "2.3-interleaved"])
def models(request) -> tuple[str, LTX2Transformer, LTX2Transformer]:
    layout = request.param
    torch.manual_seed(0)
    plain = LTX2Transformer(**LAYOUTS[layout]).eval()
    _randomize(plain, 0.1)
    fused = copy.deepcopy(plain).fuse_projections()
    return layout, plain, fused


@pytest.mark.parametrize("case", ["plain", "stg", "stg_mask", "isolate", "token_timestep"])
def test_fused_matches_unfused(models, case: str) -> None:
    layout, plain, fused = models
    kwargs = {**_inputs(layout), **CASES[case]}
    with torch.no_grad():
        expected = plain(**kwargs)
        got = fused(**kwargs)
    for stream, e, o in zip(("video", "audio"), expected, got):
        diff = (e - o).abs().max().item()
        assert diff <= TOLERANCE, f"{layout}/{case}/{stream}: fused vs unfused {diff:.3e} > {TOLERANCE:.0e}"


def test_fusing_keeps_state_dict_and_shares_storage(models) -> None:
    _, plain, fused = models
    before, after = plain.state_dict(), fused.state_dict()
    assert before.keys() == after.keys()  # the fused matrices are not checkpoint keys
    assert all(torch.equal(before[k], after[k]) for k in before)
    attn = fused.transformer_blocks[0].attn1
    assert attn.fused == "qkv"
    # The separate layers are views into the fused matrix: no second copy of the weights.
    assert attn.to_q.weight.untyped_storage().data_ptr() == attn.fused_weight.untyped_storage().data_ptr()
    assert fused.transformer_blocks[0].attn2.fused == "kv"
