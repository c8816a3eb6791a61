"""The text K/V cache (models/ltx2/text_kv.py): inside a loop's scope the text keys/values are computed
once per prompt tensor and the output is bit for bit the uncached one; it never caches outside a scope,
after an in-place change of the prompt, or for LTX-2.3 (timestep-modulated text)."""

from __future__ import annotations

import torch
from test_ltx2_transformer import LAYOUTS, _inputs, _randomize

from ditto.models.ltx2 import LTX2Transformer


def model(layout: str) -> LTX2Transformer:
    torch.manual_seed(0)
    transformer = LTX2Transformer(**LAYOUTS[layout]).eval()
    _randomize(transformer, 0.1)
    return transformer


def count_text_projections(transformer: LTX2Transformer) -> list[int]:
    calls = [0]
    for block in transformer.transformer_blocks:
        block.attn2.to_k.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def run(transformer: LTX2Transformer, inputs: dict, times: int) -> list[torch.Tensor]:
    with torch.no_grad():
        return [transformer(**inputs)[0] for _ in range(times)]


def test_scope_computes_text_kv_once_and_changes_nothing() -> None:
    transformer = model("2.0-split-stg")
    inputs = _inputs("2.0-split-stg")
    calls = count_text_projections(transformer)
    uncached = run(transformer, inputs, 1)[0]
    assert calls[0] == 2  # one per block per forward without a scope
    calls[0] = 0
    with transformer.text_kv_scope():
        outputs = run(transformer, inputs, 3)
        stg = run(transformer, {**inputs, "spatio_temporal_guidance_blocks": [1]}, 2)
    assert calls[0] == 2  # three forwards (and two STG ones) on the same prompt tensors: computed once
    assert all(torch.equal(out, uncached) for out in outputs)
    assert not torch.equal(stg[0], uncached) and torch.equal(stg[0], stg[1])
    calls[0] = 0
    run(transformer, inputs, 1)
    assert calls[0] == 2 and transformer.text_kv_cache.entries == []  # dropped when the scope ends


def test_another_or_changed_prompt_is_recomputed() -> None:
    transformer = model("2.0-split")
    inputs = _inputs("2.0-split")
    calls = count_text_projections(transformer)
    other = {**inputs, "encoder_hidden_states": inputs["encoder_hidden_states"].clone() + 1}
    with transformer.text_kv_scope():
        first, second = run(transformer, inputs, 1)[0], run(transformer, other, 1)[0]
        assert calls[0] == 4 and not torch.equal(first, second)
        inputs["encoder_hidden_states"].add_(1)  # in place: the version counter moves
        changed = run(transformer, inputs, 1)[0]
    assert calls[0] == 6
    assert torch.allclose(changed, second, atol=1e-6)


def test_ltx23_never_caches() -> None:
    transformer = model("2.3-split")
    inputs = _inputs("2.3-split")
    calls = count_text_projections(transformer)
    with transformer.text_kv_scope():
        run(transformer, inputs, 2)
    assert calls[0] == 4 and transformer.text_kv_cache.entries == []
