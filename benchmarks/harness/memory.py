"""Will a benchmark fit? Its memory, estimated before anything is built, against what the machine has.

The weights dominate: one copy shared by diffusers' and ditto's model (measure.py), in the run's dtype.
On a CPU the reference is built in float32 and then cast (measure.build_reference), so both copies exist
for a moment; on a GPU it is built in the dtype, on the device. Activations of one forward add a margin.
A 19B LTX-2 on a CPU: 19.0e9 x (4 + 2) bytes, 114 GB, where `ditto bench` was once killed at 22.5 GB.
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.harness.specs import ModelSpec

ACTIVATION_MARGIN = 1.25  # one forward's activations and the parity copies, over the weights
FIXED_BYTES = 1 << 30  # the interpreter, torch and diffusers themselves


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of the spec's diffusers model, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = spec.reference()
    return sum(p.numel() for p in model.parameters())


def bytes_needed(spec: ModelSpec, params: int, device: torch.device, dtype: torch.dtype) -> int:
    """About the peak bytes the benchmark of `params` parameters takes on `device` (host memory for a CPU run)."""
    per_param = dtype.itemsize
    if device.type == "cpu" and not spec.weights:
        per_param += torch.float32.itemsize  # built in float32, then cast: both exist at the cast
    return int(params * per_param * ACTIVATION_MARGIN) + FIXED_BYTES


def bytes_available(device: torch.device) -> int | None:
    """Free memory on `device` (host: MemAvailable), None where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def memory_problem(spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> str | None:
    """A sentence saying why the benchmark would not fit, or None when it fits (or nobody can tell)."""
    available = bytes_available(device)
    if available is None:
        return None
    params = parameter_count(spec)
    needed = bytes_needed(spec, params, device, dtype)
    if needed <= available:
        return None
    where = "host memory" if device.type == "cpu" else f"free memory on {device}"
    return (
        f"{spec.name} needs about {needed / 1e9:.0f} GB of {where} ({params / 1e9:.2f} B parameters in "
        f"{str(dtype).removeprefix('torch.')}), and {available / 1e9:.1f} GB is available"
    )
