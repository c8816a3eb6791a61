"""Memory sizes: a budget as people write it ("24GiB"), bytes as people read them, the tensors of modules, and the
device's peak memory per stage (read from the allocator, never estimated)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import nn

from ditto.errors import InvalidParameter

# "GiB" and a bare "G" are binary (what nvidia-smi and torch report); "GB" is decimal.
UNITS = {
    "": 1, "b": 1,
    "k": 2**10, "kib": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "tb": 10**12,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value: str | int | float, field: str = "max_gpu_memory") -> int:
    """`24GiB`, `48 GB`, `512MiB`, `1.5G` or a number of bytes -> bytes; anything else is an InvalidParameter."""
    if isinstance(value, bool):
        raise InvalidParameter(field, value, "is not a memory size", 'write it as "24GiB", "48GB" or bytes')
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _SIZE.match(str(value))
        if match is None or match.group(2).lower() not in UNITS:
            raise InvalidParameter(
                field, value, "is not a memory size", 'write it as "24GiB", "48GB" or bytes'
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * UNITS[unit])
    if size <= 0:
        raise InvalidParameter(field, value, "must be more than zero bytes", 'e.g. "24GiB"')
    return size


def format_bytes(size: int | float) -> str:
    """Bytes in the largest binary unit that keeps a leading digit: 25769803776 -> "24.0 GiB"."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def budget_text(size: int) -> str:
    """`size` rounded up to a budget worth writing ("9.4GiB", "726KiB"): one decimal in the largest binary
    unit that keeps a leading digit; it parses back (`parse_bytes`) to at least `size`."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            tenths = -(-size * 10 // scale)
            while int(tenths / 10 * scale) < size:  # float rounding must not land below `size`
                tenths += 1
            return f"{tenths / 10:.1f}{unit}"
    return f"{size}B"


def round_up(size: int) -> int:
    """`size` rounded up as `budget_text` writes it."""
    return parse_bytes(budget_text(size))


def module_tensors(modules: Iterable[nn.Module]) -> list[torch.Tensor]:
    """Every parameter and buffer of the modules, each once (tied weights are one tensor), in module order."""
    seen: set[int] = set()
    found = []
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                found.append(tensor)
    return found


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class PeakMemory:
    """The device allocator's peak between `reset()` and `peak()` (CUDA); None where the device has no
    allocator to read (the CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.readable = device.type == "cuda"

    def reset(self) -> None:
        if self.readable:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int | None:
        return torch.cuda.max_memory_allocated(self.device) if self.readable else None
