"""Qwen-Image sampling parameters: diffusers' QwenImagePipeline / QwenImageEditPlusPipeline keyword names,
their defaults (diffusers 0.42.1), and validation with one clear error per bad field."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ditto.acceleration.step_cache.spec import check_cache_spec
from ditto.errors import InvalidParameter
from ditto.media.image import load_image
from ditto.request import (
    check_at_least,
    check_count,
    check_multiple,
    check_one_of,
    check_prompt,
    reject_unknown,
)

# diffusers 0.42.1 pipeline_qwenimage.py / pipeline_qwenimage_edit_plus.py
DEFAULT_TRUE_CFG_SCALE = 4.0
DEFAULT_STEPS = 50
DEFAULT_SIZE = 1024  # default_sample_size 128 x vae_scale_factor 8
MAX_SEQUENCE_LENGTH = 1024
CONDITION_IMAGE_AREA = 384 * 384  # what the VL encoder sees of each edit image
VAE_IMAGE_AREA = 1024 * 1024  # what the VAE encodes of each edit image


@dataclass
class QwenImageParams:
    """One request. None means "the reference default" (resolved in `resolved`)."""

    prompt: str | list[str] | None = None
    negative_prompt: str | list[str] | None = None
    # diffusers 0.42.1 defaults true_cfg_scale to 4.0 and never reads guidance_scale for it (guidance_scale
    # is only for guidance-distilled checkpoints, which do not exist). SGLang falls back to guidance_scale when
    # true_cfg_scale is unset; ditto follows diffusers so that the same call gives the same picture.
    true_cfg_scale: float | None = None
    guidance_scale: float | None = None
    image: Any = None
    height: int | None = None
    width: int | None = None
    num_inference_steps: int = DEFAULT_STEPS
    sigmas: list[float] | None = None
    num_images_per_prompt: int = 1
    seed: int | None = None
    generator: torch.Generator | None = None
    latents: torch.Tensor | None = None
    output_type: str = "np"
    max_sequence_length: int = 512
    cache: str | None = None  # step cache spec (acceleration/step_cache/spec.py); None: the engine's default

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], family: str) -> QwenImageParams:
        reject_unknown(cls, kwargs, family)
        return cls(**kwargs)

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def negative_prompts(self) -> list[str] | None:
        """One negative per prompt; a single string is used for every prompt of a batch."""
        if self.negative_prompt is None:
            return None
        if isinstance(self.negative_prompt, str):
            return [self.negative_prompt] * len(self.prompts)
        return list(self.negative_prompt)

    @property
    def cfg_scale(self) -> float:
        return DEFAULT_TRUE_CFG_SCALE if self.true_cfg_scale is None else float(self.true_cfg_scale)

    @property
    def do_true_cfg(self) -> bool:
        """As the reference: CFG only with a scale above 1 and a negative prompt."""
        return self.cfg_scale > 1 and self.negative_prompt is not None

    def validate_common(self, multiple: int) -> None:
        prompts = check_prompt("prompt", self.prompt)
        negative = self.negative_prompt
        if negative is not None and not isinstance(negative, str):
            if not isinstance(negative, list) or len(negative) != len(prompts):
                raise InvalidParameter(
                    "negative_prompt", negative, f"must be a string or a list of {len(prompts)}"
                )
        for name in ("height", "width"):
            if getattr(self, name) is not None:
                check_multiple(name, getattr(self, name), multiple)
        check_count("num_inference_steps", self.num_inference_steps)
        check_count("num_images_per_prompt", self.num_images_per_prompt)
        if self.true_cfg_scale is not None:
            check_at_least("true_cfg_scale", self.true_cfg_scale, 0.0)
        if (
            not isinstance(self.max_sequence_length, int)
            or not 1 <= self.max_sequence_length <= MAX_SEQUENCE_LENGTH
        ):
            raise InvalidParameter(
                "max_sequence_length",
                self.max_sequence_length,
                f"must be an integer in 1..{MAX_SEQUENCE_LENGTH}",
            )
        check_one_of("output_type", self.output_type, ("np", "pil", "latent"))
        check_cache_spec(self.cache)
        if self.sigmas is not None and len(self.sigmas) != self.num_inference_steps:
            raise InvalidParameter(
                "sigmas", self.sigmas, f"must hold num_inference_steps={self.num_inference_steps} values"
            )
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise InvalidParameter("seed", self.seed, "must be an integer")

    def validate_text_to_image(self, multiple: int) -> None:
        self.validate_common(multiple)
        if self.image is not None:
            raise InvalidParameter(
                "image",
                _describe(self.image),
                "is not taken by a text-to-image model",
                "use a Qwen-Image-Edit checkpoint",
            )

    def validate_edit(self, multiple: int) -> None:
        self.validate_common(multiple)
        if self.image is None or (isinstance(self.image, list) and not self.image):
            raise InvalidParameter(
                "image", self.image, "is required by an edit model", "give one or more images"
            )
        if len(self.prompts) > 1:
            # As diffusers 0.42.1's QwenImageEditPlusPipeline, which takes one prompt at a time.
            raise InvalidParameter("prompt", self.prompt, "must be a single prompt for an edit model")


def _describe(image: Any) -> Any:
    if isinstance(image, (list, tuple)):
        return [_describe(item) for item in image]
    return str(image) if isinstance(image, (str, Path)) else type(image).__name__


def load_images(image: Any) -> list[Any]:
    """PIL images (RGB) from PIL images, paths, or a list of either; a bad item is a clear error."""
    items = image if isinstance(image, (list, tuple)) else [image]
    return [load_image(item, field="image") for item in items]


def area_dimensions(area: int, ratio: float) -> tuple[int, int]:
    """(width, height) of about `area` pixels with aspect `ratio`, multiples of 32 (diffusers' calculate_dimensions)."""
    width = math.sqrt(area * ratio)
    height = width / ratio
    return round(width / 32) * 32, round(height / 32) * 32


def resolved_size(params: QwenImageParams, images: list[Any] | None, multiple: int) -> tuple[int, int]:
    """(height, width): the user's, else 1024x1024 (text-to-image) or the last image's aspect at 1024^2 (edit)."""
    if images:
        last = images[-1]
        width, height = area_dimensions(VAE_IMAGE_AREA, last.size[0] / last.size[1])
        width, height = params.width or width, params.height or height
        # The edit reference floors the size to the packing multiple.
        return height // multiple * multiple, width // multiple * multiple
    return params.height or DEFAULT_SIZE, params.width or DEFAULT_SIZE


def with_defaults(params: QwenImageParams, **values: Any) -> QwenImageParams:
    return dataclasses.replace(params, **values)
