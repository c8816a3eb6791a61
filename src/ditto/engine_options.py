"""EngineOptions: how a checkpoint is loaded and run, fixed for an Engine's life (request fields: fields.py).

Two kinds of option:
- acceleration options (`compile`, `cuda_graphs`, `quantization`) act on whatever the loaded pipeline
  has (its transformer, text encoder, VAE); the Engine applies them after loading, in one order, and
  refuses one the pipeline has no part for.
- load options (the rest) are read by a family's `from_pretrained`; each pipeline class lists the ones it
  takes in `load_options`, and the Engine refuses any other, naming the family, before loading anything.

A coming option (step cache, offload under `max_gpu_memory`) is one field here with its metadata (`help`,
`load=True` when a family reads it at load time, `choices` where the set is closed). `parallel` (a
`ParallelConfig`, a GPU count or a mapping of its fields) makes the Engine several processes, one per GPU
(parallel/).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ditto.acceleration import QUANTIZATIONS
from ditto.errors import InvalidParameter
from ditto.parallel.config import ParallelConfig

# How LTX-2's stage 2 applies the distilled LoRA: beside the weights (no per-request pass over them) or fused.
DISTILLED_LORA_MODES = ("side", "fuse")

PathLike = str | os.PathLike


def _option(default: Any, help: str, load: bool = False, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "load": load, "choices": choices})


@dataclass(frozen=True)
class EngineOptions:
    compile: bool = _option(
        False,
        "torch.compile the transformer's blocks (and, where the family says so, "
        "the VAE decoder and the text encoder's layers)",
    )
    cuda_graphs: bool | None = _option(
        None, "record repeated GPU work as CUDA graphs (None: on with compile)"
    )
    quantization: str | None = _option(None, "transformer block products in FP8", choices=QUANTIZATIONS)
    parallel: ParallelConfig | None = _option(
        None, "several processes, one per GPU: CFG-parallel, Ulysses, parallel VAE decode (ParallelConfig)"
    )
    cache: str | None = _option(
        None, "the step cache of requests that name none (a spec: fast, dbcache, ...; `ditto serve --cache`)"
    )
    loras: tuple[PathLike, ...] = _option((), "LoRA files PATH[:SCALE], fused at load", load=True)
    text_encoder: PathLike | None = _option(
        None, "Gemma-3 folder for an official single-file LTX-2 checkpoint", load=True
    )
    upsampler: PathLike | None = _option(
        None,
        "latent upsampler folder for LTX-2's stage 2 (default: the checkpoint's latent_upsampler/)",
        load=True,
    )
    distilled_lora: PathLike | None = _option(
        None,
        "distilled LoRA for LTX-2's stage 2 (default: the checkpoint's distilled_lora/*.safetensors)",
        load=True,
    )
    distilled_lora_mode: str | None = _option(
        None,
        "how stage 2 applies the distilled LoRA (default: side)",
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
