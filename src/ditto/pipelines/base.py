"""What every family pipeline offers the Engine."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from ditto.acceleration.offload.memory import PeakMemory
from ditto.engine_options import DTYPE_NAMES, EngineOptions
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
    "vae_images",
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

    @classmethod
    def request_checker(cls, path: Path, options: EngineOptions) -> Callable[..., Any]:
        """`validate` for the checkpoint at `path`, read from its config files or metadata alone: a
        request is refused before any weight is read (the CLI checks before loading)."""

    def validate(self, **kwargs: Any) -> Any:
        """Check a request without running it (the server calls this before queueing)."""

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result: ...


class StageResidency(Protocol):
    """Where the weights go at stage edges (acceleration/offload's `Residency`, when an engine has a budget)."""

    def begin(self, request: Any) -> None: ...
    def enter(self, stage: str) -> None: ...
    def exit(self, stage: str) -> None: ...


class StageTimer:
    """Collects seconds and the device's peak memory per stage (the Result carries both, the CLI prints them),
    and tells the pipeline's residency (offload) where each stage begins and ends."""

    def __init__(self, device: torch.device, residency: StageResidency | None = None) -> None:
        self.device = device
        self.residency = residency
        self.timings: dict[str, float] = {}
        self.memory: dict[str, int] = {}  # bytes: the allocator's peak while the stage ran (GPU only)
        self.meter = PeakMemory(device)

    def begin(self, request: Any) -> None:
        """The request's own residency plan (its activation sizes), before its first stage."""
        if self.residency is not None:
            self.residency.begin(request)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.meter.reset()
        if self.residency is not None:
            self.residency.enter(name)  # the stage's weights arrive within its time and its memory
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # one sync per stage (never per step) so times are real
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        peak = self.meter.peak()
        if peak is not None:
            self.memory[name] = max(self.memory.get(name, 0), peak)
        if self.residency is not None:
            self.residency.exit(name)


DTYPES = {name: getattr(torch, canonical) for name, canonical in DTYPE_NAMES.items()}


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


def vae_images(pixels: torch.Tensor) -> np.ndarray:
    """A VAE's decoded images [B, 3, H, W] in [-1, 1] -> np.float32 [B, H, W, 3] in [0, 1] (diffusers'
    postprocess: x / 2 + 0.5, clamped).

    Channels-last and float32 on the device (exact conversions): the host gets a finished array instead of
    a strided bf16 -> float32 copy of millions of values on the CPU."""
    return (pixels * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
