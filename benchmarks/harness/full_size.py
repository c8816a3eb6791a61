"""Building large random-weight models fast, straight on the device.

Writing a 19B checkpoint to disk to load it again is slow and does not fit the device's disk next to
the other components, so the end-to-end benchmarks build every module in memory: constructed on the
GPU in the target dtype (no CPU copy, no float32 detour), weights left to the constructor's own random
init or drawn N(0, 0.02) where the constructor leaves them at zero or one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


@contextmanager
def building_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """New tensors land on `device` in `dtype` while active.

    On exit the default device is reset to None, not "cpu": a "cpu" default-device mode left active
    breaks torch.compile later in the same process.
    """
    previous = torch.get_default_dtype()
    torch.set_default_device(device)
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
        torch.set_default_device(None)


def build(factory: Callable[[], M], device: torch.device, dtype: torch.dtype) -> M:
    """`factory()` constructed on the device in `dtype`, in eval mode with no gradients."""
    with building_on(device, dtype):
        module = factory()
    return module.to(device=device, dtype=dtype).eval().requires_grad_(False)


def fill_normal(module: nn.Module, std: float = 0.02, seed: int = 0) -> nn.Module:
    """Every parameter N(0, std): DiTs zero-initialise their output layers, which would hide real work."""
    device = next(module.parameters()).device
    if device.type == "meta":
        return module  # shape checks only
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, std, generator=generator)
    return module


def share_into(target: nn.Module, source_state: dict[str, torch.Tensor]) -> nn.Module:
    """Point `target`'s parameters at `source_state`'s tensors (strict names; no copy)."""
    target.load_state_dict(source_state, strict=True, assign=True)
    return target


def offline_tokenizer(save: Callable[[Path], None]) -> Any:
    """One of ditto's offline tiny tokenizers (ditto.tiny.tokenizers); token ids are random anyway,
    only the padded sequence length matters for timing."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        save(Path(folder))
        return AutoTokenizer.from_pretrained(folder)


def parameter_count(*modules: nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        for param in module.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                total += param.numel()
    return total
