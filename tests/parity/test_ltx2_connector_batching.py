"""The text connectors run once per prompt set (positive, negative), as the official code runs them once per
prompt: batching the sets changes the numbers (the seeds' lesson, LTX-2.3). On the default 1024-token text the
tiny connectors happen to give the same bits batched and alone, so no test could see a regression there.
At 40 tokens (a multiple of the tiny connectors' 8 registers) a batch of two rounds the connector's products
differently from each prompt alone (the CPU's matrix kernels depend on the row count): here batching is
visible, and ditto must give each set's own numbers, bit for bit."""

from __future__ import annotations

import pytest
import torch

from ditto.pipelines.ltx2.text import encode_prompt_sets, gemma_hidden_states

from helpers.ltx2 import ditto_engine
from helpers.metrics import max_abs

SETS = [["a red fox in the snow"], ["blurry, low quality, distorted voice, jittery movement, echo"]]
TOKENS = 40


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_connectors_run_once_per_prompt_set(version: str) -> None:
    components = ditto_engine(version).pipeline.components
    with torch.no_grad():
        positive, negative = encode_prompt_sets(components, SETS, TOKENS)
        hidden, mask = gemma_hidden_states(components, [p for prompts in SETS for p in prompts], TOKENS)
        alone = [components.connectors(hidden[i : i + 1], mask[i : i + 1]) for i in range(2)]
        batched = components.connectors(hidden, mask)
    for embeds, (video, audio, keep) in zip((positive, negative), alone, strict=True):
        assert torch.equal(embeds.video, video) and torch.equal(embeds.audio, audio)
        assert torch.equal(embeds.mask, keep)
    if version == "2.3":
        # The case is sensitive: batched, the positive prompt's numbers change.
        assert max_abs(batched[0][:1], alone[0][0]) > 0.0
