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


def test_a_lora_fused_after_fusing_projections_reaches_qkv() -> None:
    """LoRA fusing writes weights in place, so the fused QKV matrix (a view owner) sees the LoRA too."""
    from ditto.loading.lora import LoraFile, LoraPair, LoraStack

    torch.manual_seed(0)
    plain = LTX2Transformer(**LAYOUTS["2.0-split-stg"]).eval()
    _randomize(plain, 0.1)
    fused = copy.deepcopy(plain).fuse_projections()
    g = torch.Generator().manual_seed(3)
    inner = plain.transformer_blocks[0].attn1.to_q.weight.shape
    pairs = {
        f"transformer.transformer_blocks.0.attn1.{name}": LoraPair(
            down=torch.randn(2, inner[1], generator=g),
            up=torch.randn(inner[0], 2, generator=g),
            multiplier=1.0,
        )
        for name in ("to_q", "to_k", "to_v")
    }
    lora = LoraFile("test.safetensors", pairs)
    kwargs = _inputs("2.0-split-stg")
    with torch.no_grad():
        before = fused(**kwargs)[0]
        stacks = [LoraStack({"transformer": model}) for model in (plain, fused)]
        for stack in stacks:
            stack.fuse(lora, 0.5)
        expected, got = plain(**kwargs)[0], fused(**kwargs)[0]
        assert (expected - before).abs().max() > 1e-3, "the LoRA must change the output"
        assert (expected - got).abs().max() <= TOLERANCE
        stacks[1].unfuse_all()
        assert torch.equal(fused(**kwargs)[0], before), "unfuse restores the fused matrix too"
