"""EngineOptions: how a checkpoint is loaded and run, fixed for an Engine's life (request fields: fields.py).

Two kinds of option:
- acceleration options (`compile`, `cuda_graphs`, `quantization`) act on whatever the loaded pipeline
  has (its transformer, text encoder, VAE); the Engine applies them after loading, in one order, and
  refuses one the pipeline has no part for.
- load options (the rest) are read by a family's `from_pretrained`; each pipeline class lists the ones it
  takes in `load_options`, and the Engine refuses any other, naming the family, before loading anything.

A coming option (step cache, offload under `max_gpu_memory`, parallelism) is one field here with its
metadata (`help`, `load=True` when a family reads it at load time, `choices` where the set is closed).
`ditto generate` and `ditto serve` build a flag for each field from the same metadata (ditto/cli/flags.py):
`--name-with-dashes` unless `flag` says otherwise ("" keeps it off the command line), typed from the
annotation (a bool is a switch, `bool | None` a --x/--no-x pair, a tuple a repeatable flag), or parsed by
`parse` (text -> value) for a type of its own; `metavar` names the value in the help.
`max_gpu_memory` / `offload` are applied by the Engine: it loads on the host, then hands the pipeline to
acceleration/offload.

`parallel` (a `ParallelConfig`, a GPU count, a mapping of its fields or the CLI's text "N[:key=value,...]")
makes the Engine several processes, one per GPU (parallel/); its flag is `--gpus`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ditto.acceleration import OFFLOAD_MODES, QUANTIZATIONS
from ditto.errors import InvalidParameter
from ditto.parallel.config import SPEC_HELP, ParallelConfig

# How LTX-2's stage 2 applies the distilled LoRA: beside the weights (no per-request pass over them) or fused.
DISTILLED_LORA_MODES = ("side", "fuse")
# EngineOptions.attention: what leads the CUDA attention order (layers/attention.py); None = the fast default.
ATTENTION_KERNELS = ("sdpa", "fa3", "triton", "fp8")

PathLike = str | os.PathLike
# `dtype=` / --dtype names -> torch dtype names (pipelines.base.DTYPES maps them to torch dtypes).
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def _option(
    default: Any,
    help: str,
    load: bool = False,
    choices: tuple[str, ...] = (),
    **cli: Any,
) -> Any:
    """A field with its metadata; `cli` may hold `flag`, `metavar` and `parse` (the module docstring)."""
    return field(default=default, metadata={"help": help, "load": load, "choices": choices, **cli})


@dataclass(frozen=True)
class EngineOptions:
    compile: bool = _option(
        False,
        "torch.compile the transformer's blocks, and for FLUX.2/LTX-2 the VAE decoder and the text encoder's "
        "layers (GPU: faster after a one-off compile at each new shape; on a CPU it compiles for minutes)",
    )
    cuda_graphs: bool | None = _option(
        None,
        "on a GPU, record repeated work as CUDA graphs and replay it: LTX-2's denoising passes, FLUX.2 "
        "Klein's text encoder (default: on with compile)",
    )
    quantization: str | None = _option(
        None,
        "fp8: the transformer blocks' matrix products in FP8 (Hopper/Ada GPUs; faster, outputs move by a "
        "few percent)",
        choices=QUANTIZATIONS,
    )
    loras: tuple[PathLike, ...] = _option(
        (),
        "LoRA file PATH[:SCALE], fused at load (repeatable)",
        load=True,
        flag="--lora",
        metavar="PATH[:SCALE]",
    )
    attention: str | None = _option(
        None,
        "the kernel for unmasked attention on a GPU (default: FlashAttention-3 where built, else "
        "FlashAttention-4 where installed, else cuDNN): sdpa (PyTorch's SDPA, cuDNN first), fa3 "
        "(FlashAttention-3 on Hopper, built by scripts/build_fa3.sh), triton (ditto's Triton kernel), fp8 "
        "(FP8 products: FlashAttention-3's where built, else the Triton kernel's; faster on Hopper, outputs "
        "move by a few percent)",
        choices=ATTENTION_KERNELS,
    )
    max_gpu_memory: str | int | None = _option(
        None,
        "device memory budget, e.g. 24GiB: ditto plans which weights stay on the device and which wait in host "
        "memory (moved per stage, or streamed block by block) and prints the plan",
        parse=str,
        metavar="SIZE",
    )
    offload: str | None = _option(
        None,
        "where weights wait off the device: cpu (host memory; the default with max_gpu_memory, which without "
        "a budget is the device's free memory) or none (nothing moves, the budget is only checked)",
        choices=OFFLOAD_MODES,
    )
    cache: str | None = _option(
        None, "the step cache of requests that name none (a spec: fast, dbcache, ...; `ditto serve --cache`)"
    )
    parallel: ParallelConfig | None = _option(
        None, SPEC_HELP, flag="--gpus", metavar="N[:ulysses=U,audio=shard,text=split,vae=off]"
    )
    text_encoder: PathLike | None = _option(
        None, "Gemma-3 folder for an official single-file LTX-2 checkpoint", load=True, metavar="DIR"
    )
    upsampler: PathLike | None = _option(
        None,
        "latent upsampler folder for LTX-2's stage 2 (default: the checkpoint's latent_upsampler/)",
        load=True,
        metavar="DIR",
    )
    distilled_lora: PathLike | None = _option(
        None,
        "distilled LoRA for LTX-2's stage 2 (default: the checkpoint's distilled_lora/*.safetensors)",
        load=True,
        metavar="PATH",
    )
    ic_lora: PathLike | None = _option(
        None,
        "IC-LoRA file PATH[:SCALE] for LTX-2's ic-lora pipeline (on in its stage 1)",
        load=True,
        metavar="PATH[:SCALE]",
    )
    distilled_lora_mode: str | None = _option(
        None,
        "how LTX-2's stage 2 applies the distilled LoRA: beside the weights, or fused into them (default: side)",
        load=True,
        choices=DISTILLED_LORA_MODES,
    )

    @classmethod
    def from_keywords(cls, keywords: dict[str, Any], base: EngineOptions | None = None) -> EngineOptions:
        """`Engine.from_pretrained(..., compile=True, loras=[...])` -> EngineOptions; an unknown keyword or
        a value outside a closed set is one InvalidParameter naming it and the valid ones."""
        known = {option.name: option for option in dataclasses.fields(cls)}
        for name, value in keywords.items():
            if name not in known:
                hint = f"engine options: {', '.join(known)}"
                raise InvalidParameter(name, value, "is not an engine option", hint)
            choices = known[name].metadata["choices"]
            if choices and value is not None and value not in choices:
                raise InvalidParameter(name, value, "is not known", f"one of {list(choices)}")
        if "loras" in keywords:
            keywords = {**keywords, "loras": _as_tuple(keywords["loras"])}
        if "parallel" in keywords:
            keywords = {**keywords, "parallel": ParallelConfig.of(keywords["parallel"])}
        return dataclasses.replace(base or cls(), **keywords)

    def given(self) -> dict[str, Any]:
        """The options set to something other than their default."""
        return {
            option.name: getattr(self, option.name)
            for option in dataclasses.fields(self)
            if getattr(self, option.name) != option.default
        }

    def refuse_untaken(self, family: str, taken: frozenset[str] | set[str]) -> None:
        """A load option the family does not read is an error naming the family (never silently dropped)."""
        load_options = {option.name for option in dataclasses.fields(self) if option.metadata["load"]}
        for name, value in self.given().items():
            if name in load_options and name not in taken:
                hint = f"it takes {', '.join(sorted(taken))}" if taken else "it takes no load options"
                raise InvalidParameter(name, value, f"is not taken by the {family} family", hint)


def _as_tuple(loras: Any) -> tuple[PathLike, ...]:
    """One LoRA may be given bare; a list or tuple is kept in its order."""
    if loras is None:
        return ()
    if isinstance(loras, (str, os.PathLike)):
        return (loras,)
    return tuple(loras)
