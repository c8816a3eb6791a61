"""The text K/V cache (models/ltx2/text_kv.py): within one sampling loop (a `PassContext` on the loop's
`LoopState`) the text keys/values are computed once per prompt tensor and the output is bit for bit the
uncached one; it never caches without a loop, after an in-place change of the prompt, or for LTX-2.3
(timestep-modulated text), and a new loop starts empty."""

from __future__ import annotations

import torch
from test_ltx2_transformer import LAYOUTS, _inputs, _randomize

from ditto.models.ltx2 import LTX2Transformer
from ditto.runtime import LoopState, PassContext, PassKind


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


def loop_pass(loop: LoopState, kind: PassKind = PassKind.COND) -> PassContext:
    return PassContext((kind,), step=0, sigma=1.0, loop=loop)


def run(transformer: LTX2Transformer, inputs: dict, times: int, ctx=None) -> list[torch.Tensor]:
    with torch.no_grad():
        return [transformer(**inputs, ctx=ctx)[0] for _ in range(times)]


def test_a_loop_computes_text_kv_once_and_changes_nothing() -> None:
    transformer = model("2.0-split-stg")
    inputs = _inputs("2.0-split-stg")
    calls = count_text_projections(transformer)
    uncached = run(transformer, inputs, 1)[0]
    assert calls[0] == 2  # one per block per forward without a loop
    calls[0] = 0
    loop = LoopState(num_steps=3)
    outputs = run(transformer, inputs, 3, loop_pass(loop))
    stg_inputs = {**inputs, "spatio_temporal_guidance_blocks": [1]}
    stg = run(transformer, stg_inputs, 2, loop_pass(loop, PassKind.PERTURBED))
    assert calls[0] == 2  # three forwards (and two STG ones) on the same prompt tensors: computed once
    assert all(torch.equal(out, uncached) for out in outputs)
    assert not torch.equal(stg[0], uncached) and torch.equal(stg[0], stg[1])
    calls[0] = 0
    run(transformer, inputs, 1)
    run(transformer, inputs, 1, loop_pass(LoopState(num_steps=1)))
    assert calls[0] == 4  # no loop: no cache; a new loop: its own, empty cache
    assert not hasattr(transformer, "text_kv_cache")  # nothing per request on the model


def test_another_or_changed_prompt_is_recomputed() -> None:
    transformer = model("2.0-split")
    inputs = _inputs("2.0-split")
    calls = count_text_projections(transformer)
    other = {**inputs, "encoder_hidden_states": inputs["encoder_hidden_states"].clone() + 1}
    ctx = loop_pass(LoopState(num_steps=2))
    first, second = run(transformer, inputs, 1, ctx)[0], run(transformer, other, 1, ctx)[0]
    assert calls[0] == 4 and not torch.equal(first, second)
    inputs["encoder_hidden_states"].add_(1)  # in place: the version counter moves
    changed = run(transformer, inputs, 1, ctx)[0]
    assert calls[0] == 6 and len(ctx.loop.text_kv) == 3
    assert torch.allclose(changed, second, atol=1e-6)


def test_ltx23_never_caches() -> None:
    transformer = model("2.3-split")
    inputs = _inputs("2.3-split")
    calls = count_text_projections(transformer)
    ctx = loop_pass(LoopState(num_steps=2))
    run(transformer, inputs, 2, ctx)
    assert calls[0] == 4 and ctx.loop.text_kv == {}
