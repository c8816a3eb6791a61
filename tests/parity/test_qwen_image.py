"""ditto's Qwen-Image pipelines against diffusers 0.42.1's QwenImagePipeline / QwenImageEditPlusPipeline:
same tiny folder, same seed, float32 CPU. Latents and decoded images are compared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.metrics import psnr
from helpers.qwen_image import input_image, tiny_qwen_image
from helpers.thresholds import check_at_least, check_at_most

GROUP = "qwen-image"

T2I_CASES = {
    "no_cfg": dict(prompt="a red fox in the snow", height=64, width=64, num_inference_steps=3),
    "true_cfg": dict(
        prompt="a red fox in the snow", negative_prompt="blurry", true_cfg_scale=4.0, height=64, width=64,
        num_inference_steps=3,
    ),
    "batch_of_lengths": dict(
        prompt=["a cat", "a photo of a city street at night with neon signs, rain and reflections"],
        negative_prompt=["blurry", "low contrast, washed out colors"], true_cfg_scale=2.5,
        height=48, width=48, num_inference_steps=2,
    ),
    "non_square": dict(
        prompt="a bowl of ramen", negative_prompt=" ", height=32, width=96, num_inference_steps=2,
    ),
}  # fmt: skip

EDIT_CASES = {
    "one_image": dict(images=[(80, 64, 1)], prompt="make it blue", height=64, width=64, num_inference_steps=2),
    "two_images_cfg": dict(
        images=[(64, 80, 2), (96, 48, 3)], prompt="put the cat on the sofa", negative_prompt=" ",
        true_cfg_scale=4.0, height=48, width=80, num_inference_steps=2,
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def t2i():
    from diffusers import QwenImagePipeline

    from ditto.pipelines.qwen_image import QwenImagePipeline as Ditto

    folder = tiny_qwen_image("t2i")
    return QwenImagePipeline.from_pretrained(str(folder)), Ditto.from_pretrained(
        folder, torch.device("cpu"), None
    )


@pytest.fixture(scope="module")
def edit():
    from diffusers import QwenImageEditPlusPipeline

    from ditto.pipelines.qwen_image import QwenImageEditPlusPipeline as Ditto
    from ditto.tiny.qwen_image import reference_vl_processor

    folder = tiny_qwen_image("edit")
    reference = QwenImageEditPlusPipeline.from_pretrained(
        str(folder), processor=reference_vl_processor(folder / "processor")
    )
    return reference, Ditto.from_pretrained(folder, torch.device("cpu"), None)


def compare(reference, ours, kwargs: dict, case: str) -> None:
    """Latents first (the denoiser's numbers), then the decoded images."""
    for output_type in ("latent", "np"):
        ref = reference(**kwargs, generator=torch.Generator("cpu").manual_seed(42), output_type=output_type)
        got = ours.generate(**kwargs, seed=42, output_type=output_type)
        if output_type == "latent":
            latents = got.latents["image"]
            assert latents.shape == ref.images.shape
            check_at_most(GROUP, "latents_max_abs", float((latents - ref.images).abs().max()), case)
        else:
            assert got.images.shape == ref.images.shape and got.images.dtype == np.float32
            check_at_least(GROUP, "image_psnr_db", psnr(got.images, ref.images), case)


@pytest.mark.parametrize("case", sorted(T2I_CASES))
def test_text_to_image_matches_diffusers(t2i, case):
    compare(*t2i, T2I_CASES[case], case)


@pytest.mark.parametrize("case", sorted(EDIT_CASES))
def test_edit_plus_matches_diffusers(edit, case):
    """One run per side (the 1024^2 reference-image VAE encode dominates): the reference's final latents are
    caught by its step callback, ditto's latents are decoded by the pipeline's own decode stage."""
    from ditto.pipelines.qwen_image_stages import decode

    reference, ours = edit
    kwargs = dict(EDIT_CASES[case])
    kwargs["image"] = [input_image(*spec) for spec in kwargs.pop("images")]
    caught = {}

    def catch(pipe, step, timestep, tensors):
        caught["latents"] = tensors["latents"]
        return tensors

    ref = reference(
        **kwargs,
        generator=torch.Generator("cpu").manual_seed(42),
        output_type="np",
        callback_on_step_end=catch,
    ).images
    latents = ours.generate(**kwargs, seed=42, output_type="latent").latents["image"]
    check_at_most(GROUP, "latents_max_abs", float((latents - caught["latents"]).abs().max()), case)
    images = decode(ours.components, latents, kwargs["height"], kwargs["width"])
    assert images.shape == ref.shape
    check_at_least(GROUP, "image_psnr_db", psnr(images, ref), case)


def test_images_per_prompt_keep_their_own_text_mask(t2i):
    """diffusers 0.42.1 repeats prompt embeddings per prompt (a, a, b, b) but tiles their masks (a, b, a, b)
    (`mask.repeat(1, n, 1)` on a 2-D mask), so with several prompts of different lengths and
    num_images_per_prompt > 1 an image gets another prompt's mask. ditto keeps each image's own mask: its
    result equals diffusers given the prompts repeated by hand, which draws the same noise."""
    reference, ours = t2i
    prompts = ["a cat", "a photo of a city street at night with neon signs, rain and reflections"]
    kwargs = dict(height=48, width=48, num_inference_steps=2, output_type="latent")
    ref = reference(
        prompt=[p for p in prompts for _ in range(2)],
        generator=torch.Generator("cpu").manual_seed(5),
        **kwargs,
    ).images
    got = ours.generate(prompt=prompts, num_images_per_prompt=2, seed=5, **kwargs).latents["image"]
    check_at_most(GROUP, "latents_max_abs", float((got - ref).abs().max()), "images_per_prompt")


def test_pil_output_and_progress(t2i):
    _, ours = t2i
    calls = []
    result = ours.generate(
        prompt="a fox", height=32, width=64, num_inference_steps=2, seed=1, output_type="pil",
        progress=lambda event: calls.append((event.step, event.total)),
    )  # fmt: skip
    assert [image.size for image in result.images] == [(64, 32)]
    assert calls == [(1, 2), (2, 2)]
    assert set(result.timings) == {"encode_text", "prepare_latents", "denoise", "decode"}
