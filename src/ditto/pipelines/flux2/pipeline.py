"""FLUX.2 Klein: text-to-image and multi-reference editing (diffusers' Flux2KleinPipeline keyword names).

Stages: validate -> encode_text -> encode_image -> prepare_latents -> denoise -> decode; each runs the
public steps of steps.py / denoise.py on the loaded components.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.acceleration.offload.spec import OffloadSpec
from ditto.engine_options import EngineOptions
from ditto.loading.lora import LoraStack, parse_lora_spec, read_lora
from ditto.loading.lora_flux2 import flux2_lora_key
from ditto.models.flux2 import Flux2Transformer
from ditto.pipelines.base import ProgressCallback, StageTimer, model_dtype
from ditto.pipelines.flux2 import steps
from ditto.pipelines.flux2.components import (
    KleinCheckpoint,
    KleinComponents,
    load_components,
    read_checkpoint,
)
from ditto.pipelines.flux2.denoise import denoise
from ditto.pipelines.flux2.params import Flux2KleinParams, parse_params
from ditto.pipelines.flux2.text import KleinTextEncoder
from ditto.result import Result
from ditto.runtime.contract import FeatureFactory, RequestLoops


class Flux2KleinPipeline:
    family: ClassVar[str] = "flux2-klein"
    compiles_vae_decoder: ClassVar[bool] = True  # compile=True also compiles the VAE decoder
    compiles_text_encoder: ClassVar[bool] = True  # ... and Qwen3's layers (prompts padded to one length)
    output_kind: ClassVar[str] = "image"
    load_options: ClassVar[frozenset[str]] = frozenset({"loras"})

    def __init__(
        self,
        transformer: Flux2Transformer,
        vae: Any,
        text_encoder: KleinTextEncoder,
        scheduler_config: dict[str, Any],
        is_distilled: bool,
        device: torch.device,
    ) -> None:
        self.components = KleinComponents(
            transformer, vae, text_encoder, scheduler_config, is_distilled, device
        )
        # Fused LoRAs, unfused exactly; on an accelerator the touched originals wait in host memory.
        keep = None if torch.device(device).type == "cpu" else torch.device("cpu")
        self.loras = LoraStack({"transformer": transformer}, keep)
        # Block-loop features (step cache, offload, sequence parallelism): each sampling loop of each request
        # calls every factory once and runs with what it returns (runtime.LoopFeature, runtime.RequestLoops).
        self.loop_features: list[FeatureFactory] = []

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> Flux2KleinPipeline:
        c = load_components(Path(path), device, model_dtype(dtype, device))
        pipeline = cls(c.transformer, c.vae, c.text_encoder, c.scheduler_config, c.is_distilled, c.device)
        for spec in (options or EngineOptions()).loras:
            pipeline.load_lora(*parse_lora_spec(spec))
        return pipeline

    # The parts the Engine and the harness reach (compile, CUDA graphs, timing).
    @property
    def transformer(self) -> Flux2Transformer:
        return self.components.transformer

    @property
    def vae(self) -> Any:
        return self.components.vae

    @property
    def text_encoder(self) -> KleinTextEncoder:
        return self.components.text_encoder

    def load_lora(self, path: str | Path, scale: float = 1.0) -> None:
        """Fuse a LoRA file (diffusers/PEFT, BFL or kohya layout) into the transformer in place."""
        modules = {"transformer": self.transformer}
        self.loras.fuse(read_lora(path, flux2_lora_key, modules, "a FLUX.2 transformer"), scale)

    def unload_lora(self) -> None:
        """Unfuse every LoRA: the weights are the loaded ones again, bit for bit."""
        self.loras.unfuse_all()

    @classmethod
    def request_checker(cls, path: Path, options: EngineOptions) -> Callable[..., Flux2KleinParams]:
        """`validate` for the checkpoint at `path`, from its config files alone (nothing loaded)."""
        return functools.partial(validate_request, read_checkpoint(Path(path)))

    def offload_spec(self) -> OffloadSpec:
        """The components and stages the offload planner sees (residency.py)."""
        from ditto.pipelines.flux2.residency import offload_spec

        return offload_spec(self)

    def validate(self, **kwargs: Any) -> Flux2KleinParams:
        return validate_request(self.components.checkpoint, **kwargs)

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        c = self.components
        timer = StageTimer(c.device, c.residency)
        with timer.stage("validate"):
            params = self.validate(**kwargs)
            timer.begin(params)
            height, width = steps.output_size(c, params)
            noise = steps.noise_ahead(c, params, height, width)  # drawn while the prompt is encoded
        with torch.inference_mode():
            with timer.stage("encode_text"):
                prompt_embeds, negative_embeds = steps.encode_text(c, params)
            with timer.stage("encode_image"):
                references, ref_grids = steps.encode_images(c, params)
            with timer.stage("prepare_latents"):
                grid = steps.noise_shape(c, params, height, width)[2:]
                # Positions first: built while the noise draw may still be running on the worker thread.
                cond = steps.conditioning(c, prompt_embeds, negative_embeds, references, ref_grids, grid)
                latents = steps.initial_latents(c, params, height, width, noise)
            with timer.stage("denoise"):
                loops = RequestLoops(self.family, params, self.loop_features)
                latents = denoise(c, params, latents, cond, progress, loops)
            with timer.stage("decode"):
                result = steps.decode(c, params, latents, grid)
        result.timings, result.memory, result.stats = timer.timings, timer.memory, loops.stats
        return result


def validate_request(checkpoint: KleinCheckpoint, **kwargs: Any) -> Flux2KleinParams:
    return parse_params(kwargs, checkpoint.defaults, checkpoint.multiple, checkpoint.text_layers)
