"""`compile_decoder_layers`: a transformers text encoder's layers compiled part by part give the eager hidden
states (every layer's, as the pipelines read them through transformers' output hooks), and compile=True
applies it to the pipelines that pad their prompts to one length."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ditto import Engine
from ditto.acceleration.compile import compile_decoder_layers, pipeline_text_model
from ditto.pipelines.ltx2.text import gemma_hidden_states


@pytest.fixture(scope="module")
def ltx2():
    return Engine.from_pretrained("tiny-ltx2").pipeline


def test_compiled_gemma_layers_give_the_eager_hidden_states(ltx2) -> None:
    components = ltx2.components
    prompts = ["a red fox runs through snow", "worst quality"]
    eager, eager_mask = gemma_hidden_states(components, prompts, 64)
    gemma = pipeline_text_model(ltx2)
    assert gemma is components.text_encoder
    assert compile_decoder_layers(gemma) == len(gemma.get_decoder().layers)
    with torch._dynamo.config.patch(error_on_recompile=True):  # one graph per kind of part, all layers
        compiled, mask = gemma_hidden_states(components, prompts, 64)
    assert torch.equal(mask, eager_mask)
    assert compiled.shape == eager.shape  # every layer's hidden state still recorded by the hooks
    assert (compiled - eager).abs().max() <= 1e-4 * eager.abs().max()
    # Compiling again leaves the compiled parts alone (no second wrapper around the first).
    part = gemma.get_decoder().layers[0].mlp
    forward = part.forward
    compile_decoder_layers(gemma)
    assert part.forward is forward


def test_only_pipelines_with_fixed_prompt_lengths_compile_their_text_encoder() -> None:
    from ditto.pipelines.flux2.pipeline import Flux2KleinPipeline
    from ditto.pipelines.ltx2.pipeline import LTX2Pipeline
    from ditto.pipelines.qwen_image.pipeline import QwenImagePipeline

    assert Flux2KleinPipeline.compiles_text_encoder and LTX2Pipeline.compiles_text_encoder
    assert not QwenImagePipeline.compiles_text_encoder  # prompt lengths vary: one recompile per length


def test_a_model_without_decoder_layers_is_refused() -> None:
    with pytest.raises(TypeError, match="Sequential has no decoder `layers`"):
        compile_decoder_layers(nn.Sequential(nn.Linear(2, 2)))
