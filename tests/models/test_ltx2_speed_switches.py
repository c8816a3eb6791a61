"""LTX-2's speed switches that must not move a number on the CPU: half-width RoPE tables (the default) and
the GELU-in-epilogue feed-forward (opt-in; its CUDA product is measured in benchmarks/gpu_speed.py)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.harness.specs import SPECS
from ditto.layers.mlp import use_gelu_epilogue
from ditto.models.ltx2 import LTX2Transformer


def _ropes(model: LTX2Transformer) -> list:
    return [model.rope, model.audio_rope, model.cross_attn_rope, model.cross_attn_audio_rope]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rope_type", ["interleaved", "split"])
@torch.inference_mode()
def test_compact_rope_and_gelu_epilogue_leave_the_forward_bit_identical(dtype, rope_type) -> None:
    spec = SPECS["tiny-ltx2"]
    torch.manual_seed(0)
    model = LTX2Transformer(**spec.config, rope_type=rope_type).to(dtype).eval()
    for param in model.parameters():  # non-zero everywhere (the output layers start at zero)
        param.normal_(0, 0.2)
    _, kwargs = spec.inputs(
        spec.config, spec.default_shape, torch.device("cpu"), dtype, torch.Generator().manual_seed(1)
    )
    assert all(rope.compact for rope in _ropes(model)), "compact tables are the default"
    compact = model(**kwargs)
    for rope in _ropes(model):
        rope.compact = False
    full = model(**kwargs)
    assert use_gelu_epilogue(model) == 2 * spec.config["num_layers"]  # video and audio feed-forwards
    epilogue = model(**kwargs)
    for a, b, c in zip(compact, full, epilogue):
        assert a.abs().sum() > 0
        assert torch.equal(a, b) and torch.equal(a, c)


def test_compile_true_folds_gelu_into_the_up_projection_of_ltx2_and_qwen() -> None:
    """The measured default (benchmarks/NOTES.md): with compile=True the GELU feed-forwards of LTX-2 and
    Qwen-Image use the GELU epilogue (FLUX.2's are SwiGLU); without compile they stay plain."""
    from ditto.engine import Engine, compile_pipeline
    from ditto.layers.mlp import _ProjGelu

    for model in ("tiny-ltx2", "tiny-qwen-image"):
        engine = Engine.from_pretrained(model)
        transformer = engine.pipeline.components.transformer
        layers = [m for m in transformer.modules() if isinstance(m, _ProjGelu)]
        assert layers and {layer.epilogue for layer in layers} == {False}, model
        compile_pipeline(engine.pipeline)  # compiles lazily: nothing runs here
        assert {layer.epilogue for layer in layers} == {True}, model
