"""ditto's Flux2KleinPipeline against diffusers' on the same tiny checkpoint and seed (float32, CPU).

The seed alone decides the noise: ditto gets `seed=S`, diffusers `generator=torch.Generator("cpu").manual_seed(S)`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.flux2 import reference_image, tiny_klein
from helpers.metrics import psnr
from helpers.thresholds import check_at_least, check_at_most

GROUP = "flux2-klein"

SEED = 1234
# Most cases cut the text to 128 tokens (a diffusers keyword too) to keep the suite fast; "one_prompt"
# and the padded-batch test keep the default 512.
SIZE = dict(height=64, width=64, num_inference_steps=3, max_sequence_length=128)
LONG_PROMPT = (
    "a photo of a city street at night with neon signs, rain, reflections and people walking, "
    "cinematic lighting, highly detailed, the camera pans slowly to the left while a red fox "
    "crosses the road and an astronaut rides a horse on the moon in the distance"
)
REF_A = reference_image(90, 70, seed=1)  # cropped to 80x64 (multiples of 16)
REF_B = reference_image(64, 96, seed=2)

CASES = {
    "one_prompt": (
        "distilled",
        dict(prompt="a red fox in the snow", height=64, width=64, num_inference_steps=3),
    ),
    "batch_two_lengths": ("distilled", dict(prompt=["a cat", LONG_PROMPT], **SIZE)),
    "images_per_prompt_2": ("distilled", dict(prompt="a dog on the beach", num_images_per_prompt=2, **SIZE)),
    "edit_one_reference": (
        "distilled",
        dict(prompt="make it red", image=[REF_A], num_inference_steps=2, max_sequence_length=128),
    ),
    "edit_two_references": ("distilled", dict(prompt="put both together", image=[REF_A, REF_B], **SIZE)),
    "distilled_guidance_ignored": ("distilled", dict(prompt="a bowl of ramen", guidance_scale=4.0, **SIZE)),
    "base_cfg": ("base", dict(prompt=["a bowl of ramen", LONG_PROMPT], guidance_scale=3.5, **SIZE)),
    "base_cfg_edit_2_per_prompt": (
        "base",
        dict(prompt="the cat, in snow", image=[REF_B], guidance_scale=2.0, num_images_per_prompt=2, **SIZE),
    ),
    "base_guidance_off": ("base", dict(prompt="waves on rocks", guidance_scale=1.0, **SIZE)),
}


@pytest.fixture(scope="module")
def pipelines():
    from diffusers import Flux2KleinPipeline

    from ditto.engine import Engine

    out = {}
    for variant in ("distilled", "base"):
        folder = tiny_klein(variant)
        reference = Flux2KleinPipeline.from_pretrained(str(folder), dtype=torch.float32)
        reference.set_progress_bar_config(disable=True)
        out[variant] = (Engine.from_pretrained(folder, device="cpu", dtype="float32"), reference)
    return out


def run_both(pipelines, variant: str, kwargs: dict, output_type: str):
    engine, reference = pipelines[variant]
    ours = engine.generate(**kwargs, seed=SEED, output_type=output_type)
    with torch.no_grad():
        theirs = reference(
            **kwargs, generator=torch.Generator("cpu").manual_seed(SEED), output_type=output_type
        )
    if output_type == "latent":
        return ours.latents["image"], theirs.images
    return ours.images, theirs.images


@pytest.mark.parametrize("case", list(CASES))
def test_latents_match_diffusers(pipelines, case):
    variant, kwargs = CASES[case]
    ours, theirs = run_both(pipelines, variant, kwargs, "latent")
    assert ours.shape == theirs.shape, f"{case}: shape {tuple(ours.shape)} != diffusers {tuple(theirs.shape)}"
    check_at_most(GROUP, "latents_max_abs", (ours - theirs).abs().max().item(), case)


@pytest.mark.parametrize("case", ["one_prompt", "edit_two_references", "base_cfg"])
def test_images_match_diffusers(pipelines, case):
    variant, kwargs = CASES[case]
    ours, theirs = run_both(pipelines, variant, kwargs, "np")
    assert ours.dtype == np.float32 and ours.shape == theirs.shape, f"{case}: {ours.shape} vs {theirs.shape}"
    assert 0.0 <= ours.min() and ours.max() <= 1.0
    check_at_least(GROUP, "image_psnr_db", psnr(ours, theirs), case)


def test_pil_output_matches_diffusers(pipelines):
    ours, theirs = run_both(pipelines, "distilled", CASES["one_prompt"][1], "pil")
    assert [im.size for im in ours] == [im.size for im in theirs] == [(64, 64)]
    diff = np.abs(np.asarray(ours[0], np.int16) - np.asarray(theirs[0], np.int16)).max()
    assert diff <= 1, f"pil: max uint8 diff {diff} > 1"


def test_padded_batch_does_not_change_a_prompt(pipelines):
    """A short prompt alone and next to a much longer one (more real tokens, same padded length)."""
    engine, reference = pipelines["base"]
    kwargs = dict(guidance_scale=3.0, height=64, width=64, num_inference_steps=2)
    alone = engine.generate(prompt="a cat", seed=SEED, output_type="latent", **kwargs).latents["image"]
    batch = engine.generate(prompt=["a cat", LONG_PROMPT], seed=SEED, output_type="latent", **kwargs)
    # diffusers draws the batch's noise in one call; its first sample equals the lone draw with the same seed.
    measured = (batch.latents["image"][:1] - alone).abs().max().item()
    check_at_most(GROUP, "batch_invariance_max_abs", measured, "padded_batch: alone vs in batch")


def test_progress_and_timings(pipelines):
    engine, _ = pipelines["distilled"]
    calls = []
    result = engine.generate(
        prompt="a cat", seed=0, progress=lambda event: calls.append((event.step, event.total)), **SIZE
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert result.images.shape == (1, 64, 64, 3)
    assert {"encode_text", "denoise", "decode"} <= set(result.timings)


def test_text_encoder_matches_diffusers_and_ignores_batch_mates(pipelines):
    """Qwen3 embeddings: equal to diffusers' for a padded batch, and a prompt's rows do not depend on the batch.

    Every prompt is padded to max_sequence_length on the right and the encoder runs a masked causal
    attention, so padding neither leaks into real tokens nor depends on the other prompts.
    """
    engine, reference = pipelines["distilled"]
    prompts = ["a cat", LONG_PROMPT, "a cat"]
    with torch.no_grad():
        theirs = reference._get_qwen3_prompt_embeds(reference.text_encoder, reference.tokenizer, prompts)
        theirs_alone = reference._get_qwen3_prompt_embeds(
            reference.text_encoder, reference.tokenizer, prompts[:1]
        )
    encoder = engine.pipeline.text_encoder
    ours = encoder.encode(prompts, 512, (9, 18, 27), torch.float32)
    ours_alone = encoder.encode(prompts[:1], 512, (9, 18, 27), torch.float32)
    check_at_most(GROUP, "latents_max_abs", (ours - theirs).abs().max().item(), "text_embeds")
    measured = (ours[:1] - ours_alone).abs().max().item()
    check_at_most(GROUP, "batch_invariance_max_abs", measured, "text_alone_vs_batch: embeds alone vs batch")
    print(
        f"[flux2-klein] diffusers' own alone-vs-batch embeds diff = {(theirs[:1] - theirs_alone).abs().max():.3g}"
    )
