"""Qwen-Image text-to-image and Qwen-Image-Edit(-Plus) image editing, equal to diffusers 0.42.1.

Stages: validate -> encode text (positive, then negative apart) -> prepare latents (noise; edit: reference
image latents) -> denoise (true CFG) -> decode; each runs the public steps of steps.py / latents.py /
denoise.py on the loaded components.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.acceleration.offload.spec import OffloadSpec
from ditto.engine_options import EngineOptions
from ditto.media.pixels import to_pil
from ditto.pipelines.base import ProgressCallback, StageTimer, model_dtype
from ditto.pipelines.qwen_image import steps
from ditto.pipelines.qwen_image.components import QwenImageComponents, load_components, read_multiple
from ditto.pipelines.qwen_image.denoise import DenoiseInputs, denoise
from ditto.pipelines.qwen_image.latents import decode, encode_reference_images
from ditto.pipelines.qwen_image.params import QwenImageParams, load_images, resolved_size
from ditto.result import Result
from ditto.runtime.contract import FeatureFactory, RequestLoops


class QwenImagePipeline:
    family: ClassVar[str] = "qwen-image"
    output_kind: ClassVar[str] = "image"
    load_options: ClassVar[frozenset[str]] = frozenset()
    edit: ClassVar[bool] = False
    # compile=True folds GELU into the up-projection (engine.use_compiled_fusions): 131.7 -> 128.1 ms a 1024²
    # forward on an H200, rel L2 vs diffusers compiled 1.52e-2 -> 1.54e-2 (benchmarks/RESULTS.md)
    compiled_fusions: ClassVar[bool] = True
    # Not with compile=True: prompts keep their own token count here, so a static-shape compile of the
    # text encoder would recompile for every new prompt length.
    compiles_text_encoder: ClassVar[bool] = False

    def __init__(self, components: QwenImageComponents) -> None:
        self.components = components
        # Block-loop features (step cache, offload, sequence parallelism): each sampling loop of each request
        # calls every factory once and runs with what it returns (runtime.LoopFeature, runtime.RequestLoops).
        self.loop_features: list[FeatureFactory] = []

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> QwenImagePipeline:
        dtype = model_dtype(dtype, device)
        return cls(load_components(Path(path), device, dtype, edit=cls.edit))

    def offload_spec(self) -> OffloadSpec:
        """The components and stages the offload planner sees (residency.py)."""
        from ditto.pipelines.qwen_image.residency import offload_spec

        return offload_spec(self)

    @classmethod
    def request_checker(cls, path: Path, options: EngineOptions) -> Callable[..., QwenImageParams]:
        """`validate` for the checkpoint at `path`, from its VAE config alone (nothing loaded)."""
        return functools.partial(cls.validate_request, read_multiple(Path(path)))

    @classmethod
    def validate_request(cls, multiple: int, **kwargs: Any) -> QwenImageParams:
        params = QwenImageParams.from_kwargs(kwargs, cls.family)
        check = params.validate_edit if cls.edit else params.validate_text_to_image
        check(multiple)
        return params

    def validate(self, **kwargs: Any) -> QwenImageParams:
        return self.validate_request(self.components.multiple, **kwargs)

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        params = self.validate(**kwargs)
        c = self.components
        timer = StageTimer(c.device, c.residency)
        timer.begin(params)
        size = resolved_size(params, None, c.multiple)
        with timer.stage("encode_text"):
            prompts = steps.encode_prompts(params, steps.text_encoder(c), params.max_sequence_length)
        with timer.stage("prepare_latents"):
            inputs = steps.denoise_inputs(c, params, prompts, size)
        return self.denoise_and_decode(params, inputs, size, timer, progress)

    def denoise_and_decode(
        self,
        params: QwenImageParams,
        inputs: DenoiseInputs,
        size: tuple[int, int],
        timer: StageTimer,
        progress: ProgressCallback | None,
    ) -> Result:
        loops = RequestLoops(self.family, params, self.loop_features)
        with timer.stage("denoise"):
            latents = denoise(self.components, inputs, progress, loops)
        if params.output_type == "latent":
            return Result(
                latents={"image": latents}, timings=timer.timings, memory=timer.memory, stats=loops.stats
            )
        with timer.stage("decode"):
            images = decode(self.components, latents, *size)
        images = to_pil(images) if params.output_type == "pil" else images
        return Result(images=images, timings=timer.timings, memory=timer.memory, stats=loops.stats)


class QwenImageEditPlusPipeline(QwenImagePipeline):
    """Qwen-Image-Edit(-2509/-2511): the prompt sees every image through the VL encoder (at ~384^2 pixels),
    the transformer sees every image's VAE latents (at ~1024^2 pixels) after the generated image's tokens."""

    family: ClassVar[str] = "qwen-image-edit"
    edit: ClassVar[bool] = True

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        params = self.validate(**kwargs)
        c = self.components
        timer = StageTimer(c.device, c.residency)
        timer.begin(params)
        images = load_images(params.image)
        size = resolved_size(params, images, c.multiple)
        edit = steps.prepare_edit_images(c, images)
        with timer.stage("encode_text"):
            # The edit reference does not truncate to max_sequence_length (it only checks it).
            prompts = steps.encode_prompts(params, steps.edit_text_encoder(c, edit.conditions), None)
        with timer.stage("prepare_latents"):
            image_latents = encode_reference_images(c, edit.vae_inputs, prompts[0].embeds.shape[0])
            inputs = steps.denoise_inputs(c, params, prompts, size, image_latents, edit.shapes)
        return self.denoise_and_decode(params, inputs, size, timer, progress)
