"""`Engine.from_pretrained(..., compile=True)` / `--compile`: the transformer's blocks are compiled and the
result stays the uncompiled one (CPU, float32; inductor may reorder float sums)."""

from __future__ import annotations

import numpy as np
import torch

from ditto import Engine
from ditto.acceleration.compile import BLOCK_VARIANTS, pipeline_transformer

KWARGS = dict(prompt="a cat", height=64, width=64, num_inference_steps=2, seed=3)


def test_compiled_engine_matches_eager_and_compiles_every_block_list() -> None:
    eager = Engine.from_pretrained("tiny-flux2-klein").generate(**KWARGS).images
    engine = Engine.from_pretrained("tiny-flux2-klein", compile=True)
    model = pipeline_transformer(engine.pipeline)
    for blocks in (model.transformer_blocks, model.single_transformer_blocks):
        assert all(block._compiled_call_impl is not None for block in blocks)
    assert engine.pipeline.vae.decoder._compiled_call_impl is not None  # compile=True covers the decoder
    layers = engine.pipeline.text_encoder.model.layers  # ... and the text encoder's layers, part by part
    assert all(part._ditto_compiled_forward for layer in layers for part in layer.children())
    compiled = engine.generate(**KWARGS).images
    assert np.abs(compiled - eager).max() <= 1e-4
    # A server's resolutions and pass layouts each add a variant per block: dynamo's default 8 is raised.
    assert torch._dynamo.config.recompile_limit >= BLOCK_VARIANTS
