"""FLUX.2 Klein sampling parameters: diffusers' keyword names, official defaults, validation with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from PIL import Image

from ditto.errors import InvalidParameter
from ditto.media.image import load_image

OUTPUT_TYPES = ("np", "pil", "latent")
# BFL's FLUX.2 [klein] API takes up to 4 reference images (input_image .. input_image_4).
MAX_REFERENCE_IMAGES = 4
# diffusers Flux2ImageProcessor.check_image_input: reference images need both sides >= 64 px, ratio <= 8.
MIN_REFERENCE_SIDE = 64
MAX_REFERENCE_ASPECT = 8.0
# diffusers Flux2KleinPipeline: tokenizer_max_length = 512, default_sample_size * vae_scale_factor = 1024.
MAX_SEQUENCE_LENGTH = 512
DEFAULT_SIDE = 1024
VIDEO_ONLY = ("num_frames", "frame_rate", "fps", "audio")


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

    @property
    def batch_size(self) -> int:
        return len(self.prompt) * self.num_images_per_prompt


ACCEPTED = tuple(f.name for f in fields(Flux2KleinParams))


def reject_unknown(kwargs: dict[str, Any]) -> None:
    for name in kwargs:
        if name in ACCEPTED:
            continue
        if name in VIDEO_ONLY:
            raise InvalidParameter(
                name, kwargs[name], "is a video parameter", "flux2-klein makes still images"
            )
        raise InvalidParameter(
            name, kwargs[name], "is not a flux2-klein parameter", f"accepted: {', '.join(ACCEPTED)}"
        )


def check_prompt(prompt: Any) -> list[str]:
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise InvalidParameter("prompt", prompt, "is missing", "give a text prompt or a list of prompts")
    for text in prompts:
        if not isinstance(text, str) or not text.strip():
            raise InvalidParameter("prompt", text, "is empty", "give a non-empty text prompt")
    return list(prompts)


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
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameter(name, value, "is not a positive integer", f"e.g. {DEFAULT_SIDE}")
    if value % multiple:
        nearest = max(multiple, round(value / multiple) * multiple)
        raise InvalidParameter(name, value, f"is not a multiple of {multiple}", f"try {nearest}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(name, value, "must be an integer >= 1")
    return value


def check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidParameter("seed", seed, "must be a non-negative integer")
    return seed


def check_sigmas(sigmas: Any) -> list[float] | None:
    if sigmas is None:
        return None
    try:
        values = [float(s) for s in sigmas]
    except (TypeError, ValueError):
        raise InvalidParameter("sigmas", sigmas, "is not a list of numbers") from None
    if not values or any(not 0.0 < s <= 1.0 for s in values):
        raise InvalidParameter("sigmas", sigmas, "must be non-empty with every value in (0, 1]")
    return values


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
    reject_unknown(kwargs)
    output_type = kwargs.get("output_type", "np")
    if output_type not in OUTPUT_TYPES:
        raise InvalidParameter("output_type", output_type, "is not known", f"use one of {OUTPUT_TYPES}")
    guidance = kwargs.get("guidance_scale", defaults.guidance_scale)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance < 0:
        raise InvalidParameter("guidance_scale", guidance, "must be a number >= 0")
    max_len = check_positive_int(
        "max_sequence_length", kwargs.get("max_sequence_length", MAX_SEQUENCE_LENGTH)
    )
    params = Flux2KleinParams(
        prompt=check_prompt(kwargs.get("prompt")),
        image=check_images(kwargs.get("image")),
        height=check_side("height", kwargs.get("height"), multiple),
        width=check_side("width", kwargs.get("width"), multiple),
        num_inference_steps=check_positive_int(
            "num_inference_steps", kwargs.get("num_inference_steps", defaults.num_inference_steps)
        ),
        guidance_scale=float(guidance),
        num_images_per_prompt=check_positive_int(
            "num_images_per_prompt", kwargs.get("num_images_per_prompt", 1)
        ),
        seed=check_seed(kwargs.get("seed")),
        output_type=output_type,
        latents=kwargs.get("latents"),
        sigmas=check_sigmas(kwargs.get("sigmas")),
        max_sequence_length=max_len,
        text_encoder_out_layers=check_layers(kwargs.get("text_encoder_out_layers", (9, 18, 27)), text_layers),
    )
    if params.latents is not None and not isinstance(params.latents, torch.Tensor):
        raise InvalidParameter("latents", type(params.latents).__name__, "is not a tensor")
    return params
