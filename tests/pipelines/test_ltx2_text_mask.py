"""LTX-2's text cross-attentions take no mask where the connectors' mask keeps every token (learnable
registers fill the padding, so it is all ones): the unmasked kernels run, and no value changes."""

from __future__ import annotations

import torch

from ditto.pipelines.ltx2.text import PromptEmbeddings, concat_embeddings

from helpers.ltx2 import ditto_engine

SMALL = dict(prompt="a red fox", height=64, width=64, num_frames=9, seed=3, output_type="latent")


def embeddings(mask: torch.Tensor) -> PromptEmbeddings:
    batch, length = mask.shape
    return PromptEmbeddings(torch.zeros(batch, length, 4), torch.zeros(batch, length, 2), mask)


def test_an_all_kept_mask_is_dropped_and_a_padded_one_is_kept() -> None:
    assert embeddings(torch.ones(2, 5, dtype=torch.int64)).attention_mask is None
    padded = torch.ones(2, 5, dtype=torch.int64)
    padded[1, :2] = 0
    assert embeddings(padded).attention_mask is padded
    # a CFG pair is all kept only where both of its prompts are
    pair = concat_embeddings(embeddings(torch.ones(1, 5, dtype=torch.int64)), embeddings(padded[1:]))
    assert torch.equal(pair.attention_mask, pair.mask)


def masks_the_transformer_sees(engine, **request) -> list:  # noqa: ANN001
    seen = []
    transformer = engine.pipeline.components.transformer
    forward = transformer.forward

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003
        seen.append((kwargs["encoder_attention_mask"], kwargs["audio_encoder_attention_mask"]))
        return forward(*args, **kwargs)

    transformer.forward = spy
    try:
        out = engine.generate(**request)
    finally:
        del transformer.forward
    return seen, out


def test_the_tiny_models_registers_leave_no_mask_and_the_same_latents() -> None:
    engine = ditto_engine("2.0")
    seen, out = masks_the_transformer_sees(engine, **SMALL, num_inference_steps=2, pipeline="one-stage")
    assert seen and all(video is None and audio is None for video, audio in seen)

    # The same run with the all-ones mask passed on, as the reference pipelines do: the same latents.
    kept = PromptEmbeddings.attention_mask
    PromptEmbeddings.attention_mask = property(lambda self: self.mask)
    try:
        seen_masked, masked = masks_the_transformer_sees(
            engine, **SMALL, num_inference_steps=2, pipeline="one-stage"
        )
    finally:
        PromptEmbeddings.attention_mask = kept
    assert all(video is not None and bool(video.all()) for video, _ in seen_masked)
    # Adding a zero bias changes no score: on the CPU the latents are bit-equal (measured). On a GPU the
    # kernels differ (FA3 against cuDNN's masked one), so there it is a rounding difference, not zero.
    assert out.latents.keys() == masked.latents.keys()
    for name, ours in out.latents.items():
        assert torch.equal(ours, masked.latents[name]), name
