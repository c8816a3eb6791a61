"""Qwen-Image text-to-image and Qwen-Image-Edit(-Plus) image editing, equal to diffusers 0.42.1.

Stages: validate -> encode text (positive, then negative apart) -> prepare latents (noise; edit: reference
image latents) -> denoise (true CFG) -> decode.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.engine_options import EngineOptions
from ditto.pipelines.base import ProgressCallback, StageTimer, model_dtype
from ditto.pipelines.qwen_image_components import QwenImageComponents, load_components
from ditto.pipelines.qwen_image_params import (
    CONDITION_IMAGE_AREA,
    VAE_IMAGE_AREA,
    QwenImageParams,
    area_dimensions,
    load_images,
    resolved_size,
)
from ditto.pipelines.qwen_image_sampling import flow_sigmas, initial_noise, pack
from ditto.pipelines.qwen_image_stages import DenoiseInputs, decode, denoise, encode_reference_images, to_pil
from ditto.pipelines.qwen_image_text import TextEmbeddings, encode_edit_text, encode_text
from ditto.result import Result


class QwenImagePipeline:
    family: ClassVar[str] = "qwen-image"
    output_kind: ClassVar[str] = "image"
    load_options: ClassVar[frozenset[str]] = frozenset()
    edit: ClassVar[bool] = False
    # Not with compile=True: prompts keep their own token count here, so a static-shape compile of the
    # text encoder would recompile for every new prompt length.
    compiles_text_encoder: ClassVar[bool] = False

    def __init__(self, components: QwenImageComponents) -> None:
        self.components = components

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> QwenImagePipeline:
        dtype = model_dtype(dtype, device)
        return cls(load_components(Path(path), device, dtype, edit=cls.edit))

    def validate(self, **kwargs: Any) -> QwenImageParams:
        params = QwenImageParams.from_kwargs(kwargs, self.family)
        params.validate_text_to_image(self.components.multiple)
        return params

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        params = self.validate(**kwargs)
        timer = StageTimer(self.components.device)
        height, width = resolved_size(params, None, self.components.multiple)
        with timer.stage("encode_text"):
            cond, uncond = self._encode(
                params, lambda prompts: self._text(prompts), params.max_sequence_length
            )
        with timer.stage("prepare_latents"):
            inputs = self._inputs(params, cond, uncond, height, width, None, [])
        return self._finish(params, inputs, height, width, timer, progress)

    # -- shared stages -------------------------------------------------------------------------------

    def _text(self, prompts: list[str]) -> TextEmbeddings:
        c = self.components
        return encode_text(c.tokenizer, c.text_encoder, prompts, c.device)

    def _encode(
        self, params: QwenImageParams, encoder: Any, max_length: int | None
    ) -> tuple[TextEmbeddings, TextEmbeddings | None]:
        """Positive and (with true CFG) negative prompts, encoded apart as the reference does."""
        times = params.num_images_per_prompt
        cond = encoder(params.prompts).repeat(times, max_length)
        uncond = encoder(params.negative_prompts).repeat(times, max_length) if params.do_true_cfg else None
        return cond, uncond

    def _inputs(
        self,
        params: QwenImageParams,
        cond: TextEmbeddings,
        uncond: TextEmbeddings | None,
        height: int,
        width: int,
        image_latents: torch.Tensor | None,
        reference_shapes: list[tuple[int, int, int]],
    ) -> DenoiseInputs:
        c = self.components
        batch = cond.embeds.shape[0]
        h, w = height // c.vae_scale_factor, width // c.vae_scale_factor
        if params.latents is not None:
            latents = params.latents.to(device=c.device, dtype=c.dtype)
        else:
            generator = params.generator or torch.Generator("cpu").manual_seed(
                params.seed if params.seed is not None else random.randrange(2**63)
            )
            noise = initial_noise((batch, 1, c.latent_channels, h, w), generator, c.device, c.dtype)
            latents = pack(noise[:, 0])  # drawn [B, 1, C, h, w] as the reference
        return DenoiseInputs(
            latents=latents,
            image_latents=image_latents,
            cond=cond,
            uncond=uncond,
            cfg_scale=params.cfg_scale,
            img_shapes=[(1, h // 2, w // 2), *reference_shapes],
            sigmas=flow_sigmas(
                c.scheduler_config, params.num_inference_steps, latents.shape[1], params.sigmas
            ),
        )

    def _finish(
        self,
        params: QwenImageParams,
        inputs: DenoiseInputs,
        height: int,
        width: int,
        timer: StageTimer,
        progress: ProgressCallback | None,
    ) -> Result:
        with timer.stage("denoise"):
            latents = denoise(self.components, inputs, progress)
        if params.output_type == "latent":
            return Result(latents={"image": latents}, timings=timer.timings)
        with timer.stage("decode"):
            images = decode(self.components, latents, height, width)
        return Result(images=to_pil(images) if params.output_type == "pil" else images, timings=timer.timings)


class QwenImageEditPlusPipeline(QwenImagePipeline):
    """Qwen-Image-Edit(-2509/-2511): the prompt sees every image through the VL encoder (at ~384^2 pixels),
    the transformer sees every image's VAE latents (at ~1024^2 pixels) after the generated image's tokens."""

    family: ClassVar[str] = "qwen-image-edit"
    edit: ClassVar[bool] = True

    def validate(self, **kwargs: Any) -> QwenImageParams:
        params = QwenImageParams.from_kwargs(kwargs, self.family)
        params.validate_edit(self.components.multiple)
        return params

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        from diffusers.image_processor import VaeImageProcessor

        params = self.validate(**kwargs)
        c = self.components
        timer = StageTimer(c.device)
        images = load_images(params.image)
        height, width = resolved_size(params, images, c.multiple)
        # diffusers' own resize/preprocess (PIL Lanczos, [-1, 1]) so the pixels are the reference's.
        processor = VaeImageProcessor(vae_scale_factor=c.multiple)
        conditions, vae_images, shapes = [], [], []
        for image in images:
            ratio = image.size[0] / image.size[1]
            cw, ch = area_dimensions(CONDITION_IMAGE_AREA, ratio)
            vw, vh = area_dimensions(VAE_IMAGE_AREA, ratio)
            conditions.append(processor.resize(image, ch, cw))
            vae_images.append(processor.preprocess(image, vh, vw).unsqueeze(2))
            shapes.append((1, vh // c.vae_scale_factor // 2, vw // c.vae_scale_factor // 2))
        with timer.stage("encode_text"):
            encoder = lambda prompts: encode_edit_text(  # noqa: E731
                c.tokenizer, c.image_processor, c.text_encoder, prompts, conditions, c.device
            )
            # The edit reference does not truncate to max_sequence_length (it only checks it).
            cond, uncond = self._encode(params, encoder, None)
        with timer.stage("prepare_latents"):
            image_latents = encode_reference_images(c, vae_images, cond.embeds.shape[0])
            inputs = self._inputs(params, cond, uncond, height, width, image_latents, shapes)
        return self._finish(params, inputs, height, width, timer, progress)
