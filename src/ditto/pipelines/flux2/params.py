"""FLUX.2 Klein sampling parameters: diffusers' keyword names, official defaults, validation with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ditto.acceleration.step_cache.spec import check_cache_spec
from ditto.errors import InvalidParameter
from ditto.media.image import load_image
from ditto.request import (
    VIDEO_FIELDS,
    check_at_least,
    check_count,
    check_multiple,
    check_one_of,
    check_prompt,
    check_seed,
    check_unit_sigmas,
    reject_unknown,
)

OUTPUT_TYPES = ("np", "pil", "latent")
# BFL's FLUX.2 [klein] API takes up to 4 reference images (input_image .. input_image_4).
MAX_REFERENCE_IMAGES = 4
# diffusers Flux2ImageProcessor.check_image_input: reference images need both sides >= 64 px, ratio <= 8.
MIN_REFERENCE_SIDE = 64
MAX_REFERENCE_ASPECT = 8.0
# diffusers Flux2KleinPipeline: tokenizer_max_length = 512, default_sample_size * vae_scale_factor = 1024.
MAX_SEQUENCE_LENGTH = 512
DEFAULT_SIDE = 1024


@dataclass(frozen=True)
class KleinDefaults:
    """Per checkpoint: step-distilled Klein runs 4 steps without CFG, the base model 50 steps with CFG 4.

    Distilled: huggingface.co/black-forest-labs/FLUX.2-klein-4B model card (num_inference_steps=4,
    guidance_scale=1.0). Base: diffusers Flux2KleinPipeline.__call__ defaults (50, 4.0), as the
    FLUX.2-klein-base-4B model card uses.
    """

    num_inference_steps: int
    guidance_scale: float

    @classmethod
    def for_checkpoint(cls, is_distilled: bool) -> KleinDefaults:
        return cls(4, 1.0) if is_distilled else cls(50, 4.0)


@dataclass
class Flux2KleinParams:
    prompt: list[str]
    image: list[Image.Image] | None = None
    height: int | None = None  # None: from the first reference image, else 1024
    width: int | None = None
    num_inference_steps: int = 4
    guidance_scale: float = 1.0
    num_images_per_prompt: int = 1
    seed: int | None = None
    output_type: str = "np"  # ditto's Result carries float arrays; "pil" and "latent" as diffusers
    latents: torch.Tensor | None = None
    sigmas: list[float] | None = None
    max_sequence_length: int = MAX_SEQUENCE_LENGTH
    text_encoder_out_layers: tuple[int, ...] = (9, 18, 27)  # diffusers' default hidden-state indices
    cache: str | None = None  # step cache spec (acceleration/step_cache/spec.py); None: the engine's default

    @property
    def batch_size(self) -> int:
        return len(self.prompt) * self.num_images_per_prompt


def check_images(image: Any) -> list[Image.Image] | None:
    if image is None:
        return None
    sources = image if isinstance(image, (list, tuple)) else [image]
    if len(sources) > MAX_REFERENCE_IMAGES:
        raise InvalidParameter(
            "image",
            f"{len(sources)} images",
            "is too many reference images",
            f"give at most {MAX_REFERENCE_IMAGES}",
        )
    images = [load_image(source, field=f"image[{i}]") for i, source in enumerate(sources)]
    for i, img in enumerate(images):
        w, h = img.size
        if min(w, h) < MIN_REFERENCE_SIDE:
            raise InvalidParameter(
                f"image[{i}]", f"{w}x{h}", "is too small", f"both sides must be >= {MIN_REFERENCE_SIDE}"
            )
        if max(w / h, h / w) > MAX_REFERENCE_ASPECT:
            raise InvalidParameter(
                f"image[{i}]",
                f"{w}x{h}",
                "has too extreme an aspect ratio",
                f"at most {MAX_REFERENCE_ASPECT:g}:1",
            )
    return images or None


def check_side(name: str, value: Any, multiple: int) -> int | None:
    """None (from the first reference image, else 1024) or a positive multiple of `multiple`."""
    if value is not None:
        check_multiple(name, value, multiple)
    return value


def check_layers(layers: Any, available: int) -> tuple[int, ...]:
    try:
        values = tuple(int(i) for i in layers)
    except (TypeError, ValueError):
        raise InvalidParameter("text_encoder_out_layers", layers, "is not a list of layer indices") from None
    if not values or any(not 0 <= i <= available for i in values):
        raise InvalidParameter(
            "text_encoder_out_layers",
            layers,
            "names a hidden state the text encoder does not keep",
            f"use 0..{available}",
        )
    return values


def parse_params(
    kwargs: dict[str, Any], defaults: KleinDefaults, multiple: int, text_layers: int
) -> Flux2KleinParams:
    """Typed, validated parameters; every problem raises InvalidParameter naming the field and a fix."""
    reject_unknown(Flux2KleinParams, kwargs, "flux2-klein", video_fields=VIDEO_FIELDS)
    output_type = check_one_of("output_type", kwargs.get("output_type", "np"), OUTPUT_TYPES)
    guidance = kwargs.get("guidance_scale", defaults.guidance_scale)
    check_at_least("guidance_scale", guidance, 0.0)
    counts = {
        "num_inference_steps": kwargs.get("num_inference_steps", defaults.num_inference_steps),
        "num_images_per_prompt": kwargs.get("num_images_per_prompt", 1),
        "max_sequence_length": kwargs.get("max_sequence_length", MAX_SEQUENCE_LENGTH),
    }
    for name, value in counts.items():
        check_count(name, value)
    params = Flux2KleinParams(
        prompt=check_prompt("prompt", kwargs.get("prompt")),
        image=check_images(kwargs.get("image")),
        height=check_side("height", kwargs.get("height"), multiple),
        width=check_side("width", kwargs.get("width"), multiple),
        guidance_scale=float(guidance),
        seed=check_seed("seed", kwargs.get("seed")),
        output_type=output_type,
        latents=kwargs.get("latents"),
        sigmas=check_unit_sigmas("sigmas", kwargs.get("sigmas")),
        text_encoder_out_layers=check_layers(kwargs.get("text_encoder_out_layers", (9, 18, 27)), text_layers),
        cache=check_cache_spec(kwargs.get("cache")),
        **counts,
    )
    if params.latents is not None and not isinstance(params.latents, torch.Tensor):
        raise InvalidParameter("latents", type(params.latents).__name__, "is not a tensor")
    return params
