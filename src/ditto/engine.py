"""Engine: load a checkpoint once, generate many times."""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ditto.engine_options import EngineOptions
from ditto.layers.attention import use_fast_attention
from ditto.pipelines.base import ProgressCallback, model_dtype, parse_device, parse_dtype
from ditto.registry import Family, detect_family, family_by_tiny_name
from ditto.result import Result

DEFAULT_MODEL = "tiny-ltx2"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ditto"


def tiny_checkpoint(family: Family, alias: str) -> Path:
    """The embedded tiny model: built deterministically on first use, then reused from the cache."""
    folder = cache_dir() / "tiny" / alias
    if (folder / "model_index.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{alias}-", dir=folder.parent))
    try:
        family.build_tiny(staging)
        try:
            staging.rename(folder)  # atomic: a concurrent builder that wins first is fine
        except OSError:
            if not (folder / "model_index.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_model(model: str | os.PathLike) -> tuple[Family, Path]:
    family = family_by_tiny_name(str(model))
    if family is not None:
        return family, tiny_checkpoint(family, str(model))
    path = Path(model).expanduser()
    return detect_family(path), path


@dataclass(frozen=True)
class ModelInfo:
    """A checkpoint as its config files (or an official file's metadata) describe it, before any weight is
    read: enough to check a request, and the output path, before minutes of loading."""

    name: str  # as the user gave it
    family: str  # the pipeline family (fields.FAMILIES)
    output_kind: str  # "video" or "image"
    path: Path
    validate: Callable[..., Any]  # request keywords -> the family's validated params, or InvalidParameter


def inspect_model(
    model: str | os.PathLike = DEFAULT_MODEL, options: EngineOptions | None = None
) -> ModelInfo:
    """Which family `model` is and how it checks requests, reading no weights (a tiny model name builds its
    checkpoint on first use). Options the family does not take are refused here, as at loading."""
    from ditto.loading.lora import check_lora_file, parse_lora_spec

    options = options or EngineOptions()
    family, path = resolve_model(model)
    pipeline_class = family.pipeline_class()
    options.refuse_untaken(family.name, pipeline_class.load_options)
    for spec in options.loras:
        check_lora_file(parse_lora_spec(spec)[0])
    checker = pipeline_class.request_checker(path, options)
    return ModelInfo(str(model), pipeline_class.family, pipeline_class.output_kind, path, checker)


def with_seed(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request with a seed: the given one, or a fresh random one (so the result can say which), unless
    the caller drives the randomness with a generator."""
    if kwargs.get("seed") is not None or kwargs.get("generator") is not None:
        return kwargs
    return {**kwargs, "seed": random.randrange(2**31)}


def request_record(params: Any, kwargs: dict[str, Any], model: str, family: str) -> dict[str, Any]:
    """The request as it ran, for the files' metadata: every text-surface field (fields.py) the validated
    params hold as a number or text (defaults filled in), image paths as given, the model and ditto's version."""
    from ditto import __version__
    from ditto.fields import TABLE

    record: dict[str, Any] = {}
    for entry in TABLE:
        value = kwargs.get(entry.name) if entry.name == "image" else getattr(params, entry.name, None)
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            record[entry.name] = list(value)
        elif (
            isinstance(value, (str, int, float)) and not isinstance(value, bool) and (entry.flag or entry.api)
        ):
            record[entry.name] = value
    return {**record, "model": model, "family": family, "ditto_version": __version__}


def pipeline_transformer_for(pipeline: Any, option: str, value: Any) -> torch.nn.Module:
    """The pipeline's transformer, for an option that acts on it; a clear error if it has none."""
    from ditto.acceleration.compile import pipeline_transformer
    from ditto.errors import InvalidParameter

    model = pipeline_transformer(pipeline)
    if model is None:
        raise InvalidParameter(option, value, f"is not supported by the {pipeline.family} pipeline")
    return model


def quantize_pipeline(pipeline: Any, quantization: str, device: torch.device) -> None:
    """`quantization="fp8"`: the transformer blocks' Linears run FP8 products (acceleration/fp8.py).
    Must run before compile: the compiled graph is built for the modules it finds."""
    from ditto.acceleration.fp8 import fp8_supported, quantize_transformer
    from ditto.errors import InvalidParameter

    if not fp8_supported(device):
        raise InvalidParameter(
            "quantization", quantization, f"needs FP8 tensor cores (compute capability 8.9+) on {device}",
            "a Hopper/Ada/Blackwell GPU, or no quantization",
        )  # fmt: skip
    model = pipeline_transformer_for(pipeline, "quantization", quantization)
    quantize_transformer(model, keep_originals=False)  # each bf16 weight is freed once its FP8 copy exists


def compile_pipeline(pipeline: Any) -> None:
    """`compile=True`: regional torch.compile of the transformer's blocks (the first call at each new shape
    compiles, tens of seconds for LTX-2; later calls run the compiled graph: 1.41x on an H100, RESULTS.md),
    and, where the pipeline says so, of its VAE decoder and its text encoder's decoder layers."""
    from ditto.acceleration import compile as regional

    transformer = pipeline_transformer_for(pipeline, "compile", True)
    use_compiled_fusions(pipeline, transformer)
    regional.compile_transformer(transformer)
    if getattr(pipeline, "compiles_vae_decoder", False):
        regional.compile_vae_decoder(regional.pipeline_module(pipeline, "vae"))
    if getattr(pipeline, "compiles_text_encoder", False):
        regional.compile_decoder_layers(regional.pipeline_text_model(pipeline))


def use_compiled_fusions(pipeline: Any, transformer: torch.nn.Module) -> None:
    """The kernel fusions that come with `compile=True` where the pipeline asks for them (`compiled_fusions`:
    LTX-2, Qwen-Image); eager stays plain. Measured on an H200 (benchmarks/NOTES.md): the GELU in the up-projection's
    epilogue, forward 1,772.6 -> 1,737.5 ms (-2.0 %), 7.04e-3 relative L2 from diffusers compiled (6.88e-3
    before); the one-kernel q/k norm + RoPE (models/ltx2/attention.py), 1,702.0 -> 1,668.4 ms with FA3
    (-2.0 %), 7.00e-3. Both within the 1e-2 bar. Qwen-Image takes the GELU epilogue too: 131.7 -> 128.1 ms
    (-2.7 %), 1.52e-2 -> 1.54e-2 from diffusers compiled (its compiled blocks were at 1.5e-2 before: inductor
    rounds its RoPE otherwise than diffusers' complex product); its attention has no fused q/k kernel."""
    if not getattr(pipeline, "compiled_fusions", False):
        return
    from ditto.layers.mlp import use_gelu_epilogue
    from ditto.models.ltx2.attention import use_fused_qk_rope

    use_gelu_epilogue(transformer)
    use_fused_qk_rope(transformer)


def accelerate(pipeline: Any, options: EngineOptions, device: torch.device) -> None:
    """The speed recipe, in its one valid order: quantize (the compiled graph is built for the modules it
    finds), compile, then CUDA graphs (which follow compile unless asked)."""
    if options.quantization:
        quantize_pipeline(pipeline, options.quantization, device)
    if options.compile:
        compile_pipeline(pipeline)
    enable_cuda_graphs(pipeline, options.cuda_graphs, options.compile)


def enable_cuda_graphs(pipeline: Any, asked: bool | None, compiled: bool) -> None:
    """`cuda_graphs`: record work that repeats with the same shapes as CUDA graphs (acceleration/cuda_graph.py):
    LTX-2's denoising passes, FLUX.2 Klein's text encoder. Unset, it follows `compile` where the pipeline
    has such a part; asked for where it has none, a clear error."""
    from ditto.acceleration.compile import pipeline_transformer
    from ditto.errors import InvalidParameter

    parts = [pipeline_transformer(pipeline), getattr(pipeline, "text_encoder", None)]
    supported = [part for part in parts if hasattr(part, "cuda_graphs")]
    if asked and not supported:
        raise InvalidParameter(
            "cuda_graphs",
            asked,
            f"is not supported by the {pipeline.family} pipeline",
            "LTX-2 / LTX-2.3 and FLUX.2 Klein models",
        )
    for part in supported:
        part.cuda_graphs = compiled if asked is None else bool(asked)


def choose_attention(device: torch.device, kernel: str | None) -> None:
    """The attention order for this device; an asked-for kernel that cannot run here is an error."""
    from ditto.errors import InvalidParameter
    from ditto.layers.attention import attention_backends

    use_fast_attention(device, kernel)
    usable = device.type == "cuda" and (attention_backends() or [None])[0] == kernel
    if kernel in KERNEL_NEEDS and not usable:
        raise InvalidParameter(
            "attention", kernel, f"needs {KERNEL_NEEDS[kernel]}; not available on {device}", "sdpa"
        )


# What each optional attention kernel needs, for the error when it is asked for where it cannot run.
KERNEL_NEEDS = {
    "triton": "Triton and a CUDA GPU",
    "fp8": "Triton and a CUDA GPU of compute capability 9.0+ (Hopper)",
    "fa3": "an H100/H200 (compute capability 9.0) and FlashAttention-3 built by scripts/build_fa3.sh",
}


class Engine:
    """`Engine.from_pretrained(model, device, dtype, **options)`, then `engine.generate(**kwargs)`.

    With `parallel=` the engine is several processes (parallel/session.py): this object on rank 0 leads and
    its calls run on every rank; a rank other than 0 (under torchrun) calls `follow()` instead."""

    def __init__(
        self,
        pipeline: Any,
        model: str,
        options: EngineOptions | None = None,
        session: Any = None,
        device: torch.device | None = None,
    ) -> None:
        from ditto.acceleration.step_cache import install_step_cache

        self.pipeline = pipeline
        self.model = model
        self.options = options or EngineOptions()
        self.session = session
        self.device = device
        # Every request may name a step cache (`cache=`); the option is the default of those that do not.
        self.step_cache = install_step_cache(pipeline, self.options.cache)
        self.offload_plan: Any = None  # acceleration.offload.OffloadPlan with max_gpu_memory / offload

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike = DEFAULT_MODEL,
        device: str | torch.device | None = "cpu",
        dtype: str | torch.dtype | None = None,
        options: EngineOptions | None = None,
        plan_for: dict[str, Any] | None = None,
        **keywords: Any,
    ) -> Engine:
        """Load a checkpoint folder or file (or a tiny model name such as 'tiny-ltx2'). Options come as
        keywords (`compile=True`, `loras=[...]`: the fields of EngineOptions), or as `options=`, which the
        keywords then override. An unknown option, or one the family does not take, is refused before
        any weight is read.

        With `max_gpu_memory` (or `offload="cpu"`) the residency plan is made for the family's default
        request, or for `plan_for` (generate() keywords: the request the engine will mostly serve); it is
        printed, and a budget it cannot meet is an error naming the smallest that works."""
        from ditto.acceleration.offload import enable_offload, resolve_offload
        from ditto.acceleration.step_cache import parse_cache_spec

        options = EngineOptions.from_keywords(keywords, base=options)
        parse_cache_spec(options.cache)  # a bad default cache spec fails before any weight is read
        if options.parallel is not None:  # the split, and the GPUs it needs, before the model is looked at
            from ditto.parallel.launch import local_world_size

            options.parallel.check(parse_device(device or "cpu"), local_world_size())
        family, path = resolve_model(model)
        pipeline_class = family.pipeline_class()
        options.refuse_untaken(family.name, pipeline_class.load_options)
        device = parse_device(device or "cpu")
        session = None
        if options.parallel is not None:
            from ditto.parallel.session import open_session

            session, device = open_session(
                options.parallel, device, (Engine.from_pretrained, str(path), dtype, options)
            )
        offload = resolve_offload(options.max_gpu_memory, options.offload, device)
        choose_attention(device, options.attention)
        # With a budget the weights are read into host memory: the model may not fit the device at all.
        moving = offload is not None and offload.mode == "cpu"
        load_device = torch.device("cpu") if moving else device
        dtype = model_dtype(parse_dtype(dtype), device)
        with session.loading() if session is not None else nullcontext():
            pipeline = pipeline_class.from_pretrained(path, load_device, dtype, options)
            accelerate(pipeline, options, device)
            if session is not None:
                session.attach(pipeline)
        engine = cls(pipeline, str(model), options, session, device)
        if offload is not None:
            engine.offload_plan = enable_offload(pipeline, device, offload, plan_for)
            print(engine.offload_plan.describe(), file=sys.stderr)
        return engine

    @property
    def leads(self) -> bool:
        """True unless this is a follower rank of a parallel engine (which must call `follow()`)."""
        return self.session is None or self.session.leads

    def follow(self) -> None:
        """A follower rank (torchrun): run rank 0's calls until rank 0 closes its engine."""
        self.session.follow(self)

    def close(self) -> None:
        """Stop a parallel engine's other processes (rank 0); nothing for a one-process engine."""
        if self.session is not None:
            self.session.close()

    @property
    def quantization(self) -> str | None:
        return self.options.quantization

    @property
    def family(self) -> str:
        return self.pipeline.family

    @property
    def output_kind(self) -> str:
        return self.pipeline.output_kind

    def validate(self, **kwargs: Any) -> Any:
        """The request's parameters, checked as `generate` will (the step cache against the model too)."""
        params = self.pipeline.validate(**kwargs)
        self.step_cache.check_request(params)
        return params

    def defaults(self, **kwargs: Any) -> Any:
        """The request's parameters with the family's defaults filled in, for a form: like `validate`, but
        a pipeline that needs an input first (LTX-2's retake: its source video) still gives its defaults."""
        defaults = getattr(self.pipeline, "defaults", None)
        return defaults(**kwargs) if defaults is not None else self.pipeline.validate(**kwargs)

    def load_lora(self, path: str | os.PathLike, scale: float = 1.0) -> None:
        """Fuse a LoRA into the weights in place (diffusers/PEFT layout, or the model's official one:
        LTX-2's, FLUX.2's BFL or kohya names)."""
        if not hasattr(self.pipeline, "load_lora"):
            from ditto.errors import InvalidParameter

            raise InvalidParameter("lora", str(path), f"is not supported by the {self.family} pipeline")
        self._refuse_fusing_into_quantized(path)
        self._on_every_rank("load_lora", dict(path=str(path), scale=scale))

    def unload_lora(self) -> None:
        """Unfuse every loaded LoRA; the weights are restored bit for bit."""
        if hasattr(self.pipeline, "unload_lora"):
            self._refuse_fusing_into_quantized("(all loaded)")
            self._on_every_rank("unload_lora", {})

    def _on_every_rank(self, name: str, kwargs: dict[str, Any]) -> Any:
        run = lambda: getattr(self.pipeline, name)(**kwargs)  # noqa: E731
        return run() if self.session is None else self.session.call(name, kwargs, run)

    def _refuse_fusing_into_quantized(self, path: str | os.PathLike) -> None:
        """FP8 weights were quantized from the weights as loaded: fusing or unfusing afterwards would
        change bf16 copies the model no longer uses."""
        if self.quantization:
            from ditto.errors import InvalidParameter

            raise InvalidParameter(
                "lora", str(path), f"cannot be fused or unfused after {self.quantization} quantization",
                "pass loras= to Engine.from_pretrained (fused before quantizing) or load without quantization",
            )  # fmt: skip

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        """Run one request (diffusers' keyword names of the family). Without `seed` (or `generator`) a
        random seed is drawn; `result.seed` says which, and `result.request` records the request as it ran."""
        kwargs = with_seed(kwargs)
        start = time.perf_counter()
        params = self.validate(**kwargs)
        checked = time.perf_counter() - start
        if self.session is not None:  # every rank runs it (parallel/session.py); rank 0's Result comes back
            result = self.session.generate(self.pipeline, progress, kwargs)
        else:
            with torch.inference_mode():
                result = self.pipeline.generate(progress=progress, **kwargs)
        timings = result.timings
        result.timings = {"validate": timings.pop("validate", 0.0) + checked, **timings}
        result.seed = kwargs.get("seed")
        result.request = request_record(params, kwargs, self.model, self.family)
        return result
