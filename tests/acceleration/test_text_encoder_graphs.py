"""FLUX.2 Klein's text encoder with its own attention mask (recordable) and, on a GPU, as a CUDA graph kept
across requests: the same hidden states as transformers' forward with the padding mask."""

from __future__ import annotations

import warnings

import pytest
import torch

from ditto import Engine
from ditto.pipelines.flux2.text import causal_padding_mask

LAYERS = (9, 18, 27)


def reference(encoder, prompts: list[str], max_length: int) -> torch.Tensor:
    """transformers builds the mask itself from the 2-D padding mask."""
    ids, mask = encoder.tokenize(prompts, max_length)
    with torch.inference_mode():
        out = encoder.model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
    return torch.stack([out.hidden_states[i] for i in LAYERS], dim=2).flatten(2)


@pytest.fixture(scope="module")
def cpu_encoder():
    return Engine.from_pretrained("tiny-flux2-klein").pipeline.text_encoder


@pytest.mark.parametrize("max_length", [64, 4])  # padded; truncated to 4 tokens, so nothing is padded
def test_own_mask_gives_transformers_hidden_states(cpu_encoder, max_length: int) -> None:
    prompts = ["a cat", "a dog on a mat, photographed at dusk"]
    ours = cpu_encoder.encode_unique(prompts, max_length, LAYERS)
    assert torch.equal(ours, reference(cpu_encoder, prompts, max_length))


def test_mask_is_causal_over_real_tokens_and_none_without_padding() -> None:
    mask = causal_padding_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert mask.shape == (2, 1, 3, 3)
    assert mask[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert mask[1, 0].tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_padding_mask(torch.ones(2, 3, dtype=torch.long)) is None


def test_compile_turns_the_graphs_on_and_the_option_can_turn_them_off() -> None:
    assert Engine.from_pretrained("tiny-flux2-klein").pipeline.text_encoder.cuda_graphs is False
    assert Engine.from_pretrained("tiny-flux2-klein", compile=True).pipeline.text_encoder.cuda_graphs is True
    off = Engine.from_pretrained("tiny-flux2-klein", compile=True, cuda_graphs=False)
    assert off.pipeline.text_encoder.cuda_graphs is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_recorded_encoder_replays_the_eager_hidden_states_across_requests() -> None:
    encoder = Engine.from_pretrained(
        "tiny-flux2-klein", device="cuda", dtype="bfloat16"
    ).pipeline.text_encoder
    encoder.cuda_graphs = True
    requests = [["a cat"], ["a red fox in the snow"], ["a bowl of ramen"], ["a cat"]]  # 3rd, 4th: replays
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed recording warns: fail instead
        graphed = [encoder.encode_unique(prompts, 64, LAYERS) for prompts in requests]
    assert encoder.graphs.passes and all(p.graph is not None for p in encoder.graphs.passes.values())
    for prompts, out in zip(requests, graphed, strict=True):
        assert torch.equal(out, reference(encoder, prompts, 64))
