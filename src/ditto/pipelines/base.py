"""What every family pipeline offers the Engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from ditto.engine_options import EngineOptions
from ditto.errors import InvalidParameter
from ditto.result import Result
from ditto.runtime.progress import ProgressCallback  # StepEvent -> None; may raise JobCancelled

__all__ = [
    "DTYPES",
    "Pipeline",
    "ProgressCallback",
    "StageTimer",
    "model_dtype",
    "parse_device",
    "parse_dtype",
]


class Pipeline(Protocol):
    family: ClassVar[str]
    output_kind: ClassVar[str]  # "video" or "image"
    # The EngineOptions load options its from_pretrained reads; the Engine refuses any other.
    load_options: ClassVar[frozenset[str]]

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> Pipeline: ...

    def validate(self, **kwargs: Any) -> Any:
        """Check a request without running it (the server calls this before queueing)."""

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result: ...


class StageTimer:
    """Collects seconds per stage; the Result carries them and the CLI prints them."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # one sync per stage (never per step) so times are real
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def parse_dtype(value: str | torch.dtype | None, field: str = "dtype") -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    if value not in DTYPES:
        raise InvalidParameter(field, value, "is not a known dtype", f"use one of {sorted(DTYPES)}")
    return DTYPES[value]


def model_dtype(dtype: torch.dtype | None, device: torch.device) -> torch.dtype:
    """The precision a pipeline runs in when none is asked: bfloat16 on a GPU (the official code and the
    released weights are bfloat16), float32 on the CPU (its only fast and exact choice)."""
    if dtype is not None:
        return dtype
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def parse_device(value: str | torch.device) -> torch.device:
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise InvalidParameter("device", value, "is not a device", 'use "cpu", "cuda" or "cuda:N"') from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameter("device", str(value), "is not available on this machine", 'use "cpu"')
    return device
