"""LTX-2 text path: Gemma-3 hidden states of every layer, then the text connectors, once per prompt set."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ditto.pipelines.ltx2.components import LTX2Components


@dataclass
class PromptEmbeddings:
    video: torch.Tensor  # [B, S, video cross-attention width]
    audio: torch.Tensor  # [B, S, audio cross-attention width]
    mask: torch.Tensor  # [B, S] 1 = attend

    @cached_property
    def attention_mask(self) -> torch.Tensor | None:
        """The keep-mask the text cross-attentions take, or None where it keeps every token. With the
        connectors' learnable registers (LTX-2 and 2.3) the padding holds registers and the official mask
        is all ones: it adds 0 to every score, so dropping it changes no value, and the cross-attentions
        then run on the unmasked kernels (FA3: 1.43 -> ~1.0 ms a call at 1280x704x121 on an H200,
        benchmarks/NOTES.md). One host read per prompt set, on its first pass: before any CUDA graph
        records that pass (cuda_graph.py warms each pass up eagerly first)."""
        return None if bool(self.mask.all()) else self.mask


def gemma_hidden_states(
    components: LTX2Components, prompts: list[str], max_sequence_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """All hidden states (embeddings + every layer) stacked on the last axis, left-padded as the official code."""
    tokenizer = components.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokens = tokenizer(
        [p.strip() for p in prompts],
        padding="max_length",
        max_length=max_sequence_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    )
    ids = tokens.input_ids.to(components.device)
    mask = tokens.attention_mask.to(components.device)
    # logits_to_keep=1: only the hidden states are used, not the 262k-word logits of every token (1 GB at
    # 2x1024 tokens). use_cache=False: one forward needs no key/value cache, and filling one makes each
    # layer's compiled attention recompile (the cache's per-layer state is guarded).
    outputs = components.text_encoder(
        input_ids=ids, attention_mask=mask, output_hidden_states=True, logits_to_keep=1, use_cache=False
    )
    hidden = torch.stack(outputs.hidden_states, dim=-1).flatten(2, 3)
    return hidden.to(components.dtype), mask


def encode_prompt_sets(
    components: LTX2Components, prompt_sets: list[list[str]], max_sequence_length: int
) -> list[PromptEmbeddings]:
    """Every prompt set's embeddings; a parallel engine with text="split" encodes each set on one rank and
    shares it (parallel/text.py)."""
    mesh = components.parallel
    if mesh is None or mesh.config.text != "split" or len(prompt_sets) < 2:
        return encode_here(components, prompt_sets, max_sequence_length)
    from ditto.parallel.text import encode_over_ranks

    def encode(sets: list[list[str]]) -> list[tuple[torch.Tensor, ...]]:
        return [(e.video, e.audio, e.mask) for e in encode_here(components, sets, max_sequence_length)]

    encoded = encode_over_ranks(prompt_sets, encode, mesh, components.device)
    return [PromptEmbeddings(*tensors) for tensors in encoded]


def encode_here(
    components: LTX2Components, prompt_sets: list[list[str]], max_sequence_length: int
) -> list[PromptEmbeddings]:
    """Gemma once over every prompt of every set (one batch: the positive and negative prompts of a CFG
    request cost one call, ~0.1 s less for Gemma-3 12B on an H100), then the connectors once per set.

    Gemma's rows are independent (left padding, attention mask), so batching changes nothing but the
    rounding of its products. The connectors are not batched across sets: the official code runs them
    once per prompt set, and batching them together changes the numbers (seed lesson, 2.3).
    """
    hidden, mask = gemma_hidden_states(
        components, [p for prompts in prompt_sets for p in prompts], max_sequence_length
    )
    padding_side = getattr(components.tokenizer, "padding_side", "left")
    sizes = [len(prompts) for prompts in prompt_sets]
    embeddings = []
    for set_hidden, set_mask in zip(hidden.split(sizes), mask.split(sizes), strict=True):
        video, audio, connector_mask = components.connectors(set_hidden, set_mask, padding_side=padding_side)
        embeddings.append(PromptEmbeddings(video=video, audio=audio, mask=connector_mask))
    return embeddings


def repeat_embeddings(embeds: PromptEmbeddings, times: int) -> PromptEmbeddings:
    """num_videos_per_prompt: each prompt's row repeated `times` times, prompt by prompt."""
    if times == 1:
        return embeds
    return PromptEmbeddings(
        *(t.repeat_interleave(times, dim=0) for t in (embeds.video, embeds.audio, embeds.mask))
    )


def concat_embeddings(first: PromptEmbeddings, second: PromptEmbeddings) -> PromptEmbeddings:
    return PromptEmbeddings(
        video=torch.cat([first.video, second.video]),
        audio=torch.cat([first.audio, second.audio]),
        mask=torch.cat([first.mask, second.mask]),
    )
