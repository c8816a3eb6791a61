"""LTX-2 / LTX-2.3 text/image-to-video with sound: load a checkpoint, validate a request, run its recipe.

The work is done by the recipes (recipes/: one-stage, two-stage, distilled), each a short composition of
the public steps (steps.py); this class owns what lives as long as the pipeline: the components, the
LoRAs, and the block-loop features every sampling loop runs with.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.acceleration.offload.spec import OffloadSpec
from ditto.engine_options import EngineOptions
from ditto.errors import InvalidParameter
from ditto.loading.lora import LoraStack, parse_lora_spec, read_lora
from ditto.loading.lora_ltx2 import ltx2_lora_key
from ditto.loading.lora_side import LoraSide
from ditto.pipelines.base import ProgressCallback, model_dtype
from ditto.pipelines.ltx2.components import LTX2Checkpoint, LTX2Components, load_components, read_checkpoint
from ditto.pipelines.ltx2.conditioning.image import with_image_conditions
from ditto.pipelines.ltx2.conditioning.image_frames import with_image_frames
from ditto.pipelines.ltx2.latents import LatentShape, latent_shape
from ditto.pipelines.ltx2.lora import DistilledLora
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes import RECIPES
from ditto.pipelines.ltx2.steps import Toolkit
from ditto.result import Result
from ditto.runtime.contract import FeatureFactory, RequestLoops


class LTX2Pipeline:
    family: ClassVar[str] = "ltx2"
    compiles_vae_decoder: ClassVar[bool] = True  # compile=True also compiles the VAE decoder
    # compile=True folds GELU into the up-projection and norms + rotates q/k in one kernel (engine.py)
    compiled_fusions: ClassVar[bool] = True
    compiles_text_encoder: ClassVar[bool] = True  # ... and Gemma's layers (prompts padded to one length)
    output_kind: ClassVar[str] = "video"
    load_options: ClassVar[frozenset[str]] = frozenset(
        {"loras", "upsampler", "distilled_lora", "distilled_lora_mode", "ic_lora"}
    )

    def __init__(self, components: LTX2Components, distilled_lora_mode: str = "side") -> None:
        self.components = components
        modules = {"transformer": components.transformer, "connectors": components.connectors}
        # Fused LoRAs, unfused exactly; on an accelerator the touched originals wait in host memory.
        keep = None if components.device.type == "cpu" else torch.device("cpu")
        self.loras = LoraStack(modules, keep)
        self.lora_side = LoraSide(modules)
        self.distilled = DistilledLora(
            components.distilled_lora, self.loras, self.lora_side, distilled_lora_mode
        )
        # The IC-LoRA goes beside the weights too, over the distilled LoRA's side layers when both are on.
        self.ic_lora = DistilledLora(components.ic_lora, self.loras, LoraSide(modules), distilled_lora_mode)
        # Block-loop features (step cache, offload, sequence parallelism): each sampling loop of each request
        # calls every factory once and runs with what it returns (runtime.LoopFeature).
        self.loop_features: list[FeatureFactory] = []

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> LTX2Pipeline:
        options = options or EngineOptions()
        dtype = model_dtype(dtype, device)
        components = load_components(Path(path), device, dtype, options.upsampler, options.distilled_lora)
        use_ic_lora(components, options.ic_lora)
        pipeline = cls(components, options.distilled_lora_mode or "side")
        for spec in options.loras:
            pipeline.load_lora(*parse_lora_spec(spec))
        return pipeline

    def load_lora(self, path: str | Path, scale: float = 1.0) -> None:
        """Fuse a LoRA file (diffusers/PEFT or official LTX layout) into the transformer/connectors in place."""
        self.loras.fuse(read_lora(path, ltx2_lora_key), scale)

    def unload_lora(self) -> None:
        """Unfuse every LoRA: the weights are the loaded ones again, bit for bit."""
        self.loras.unfuse_all()

    @property
    def version(self) -> str:
        return self.components.version

    @property
    def distilled_lora_mode(self) -> str:
        """How stage 2 applies the distilled LoRA: "side" (beside the weights) or "fuse" (lora.py)."""
        return self.distilled.mode

    @distilled_lora_mode.setter
    def distilled_lora_mode(self, mode: str) -> None:
        self.distilled.set_mode(mode)

    def default_recipe(self) -> str:
        """The official recommendation (two-stage) where the checkpoint has what it needs; one-stage otherwise."""
        return self.components.checkpoint.default_recipe

    @classmethod
    def request_checker(cls, path: Path, options: EngineOptions) -> Callable[..., LTX2Params]:
        """`validate` for the checkpoint at `path`, from its config files alone (nothing loaded)."""
        checkpoint = read_checkpoint(Path(path), options.upsampler, options.distilled_lora)
        checkpoint = dataclasses.replace(checkpoint, ic_lora=ic_lora_file(options.ic_lora))
        return functools.partial(validate_request, checkpoint)

    def validate(self, **kwargs: Any) -> LTX2Params:
        return validate_request(self.components.checkpoint, **kwargs)

    def defaults(self, **kwargs: Any) -> LTX2Params:
        return request_defaults(self.components.checkpoint, **kwargs)

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        params = self.validate(**kwargs)
        loops = RequestLoops(self.family, params, self.loop_features)
        kit = Toolkit(self.components, self.distilled, loops, self.ic_lora)
        result = RECIPES[params.pipeline].run(kit, params, progress)
        result.stats = kit.loops.stats
        return result

    def latent_shape(self, params: LTX2Params) -> LatentShape:
        return latent_shape(self.components, params)

    def offload_spec(self) -> OffloadSpec:
        """The components and stages the offload planner sees (residency.py)."""
        from ditto.pipelines.ltx2.residency import offload_spec

        return offload_spec(self)


def validate_request(checkpoint: LTX2Checkpoint, **kwargs: Any) -> LTX2Params:
    """The request with the checkpoint's official defaults filled in, checked by its recipe."""
    raw = LTX2Params.from_kwargs(kwargs)
    name = recipe_name(raw, checkpoint)
    raw = RECIPES[name].adapt(raw)  # what the recipe's inputs fix (a retake's size: its source's)
    params = with_image_frames(raw.resolved(checkpoint.version, checkpoint.num_layers, name))
    RECIPES[name].check(raw, params, checkpoint)
    return with_image_conditions(params)


def request_defaults(checkpoint: LTX2Checkpoint, **kwargs: Any) -> LTX2Params:
    """The request with its pipeline's official defaults filled in, without the checks of the inputs the
    pipeline needs (a retake's video, two keyframes) or of the checkpoint (an upsampler): a form's
    defaults for each pipeline, before any file is given."""
    raw = LTX2Params.from_kwargs(kwargs)
    return raw.resolved(checkpoint.version, checkpoint.num_layers, recipe_name(raw, checkpoint))


def recipe_name(raw: LTX2Params, checkpoint: LTX2Checkpoint) -> str:
    name = raw.pipeline or checkpoint.default_recipe
    if name not in RECIPES:
        raise InvalidParameter("pipeline", name, "is not known", f"use one of {list(RECIPES)}")
    return name


def use_ic_lora(components: LTX2Components, spec: Any) -> None:
    """The `ic_lora=PATH[:SCALE]` load option on the components (the ic-lora recipe applies it)."""
    if spec is None:
        return
    components.ic_lora, components.ic_lora_scale = ic_lora_file(spec), parse_lora_spec(spec)[1]


def ic_lora_file(spec: Any) -> Path | None:
    """The IC-LoRA file of an `ic_lora=PATH[:SCALE]` load option (None: none), which must exist."""
    if spec is None:
        return None
    path = Path(parse_lora_spec(spec)[0])
    if not path.is_file():
        raise InvalidParameter("ic_lora", str(path), "is not a file", "give the IC-LoRA .safetensors file")
    return path
