"""LoRA files: read them (diffusers/PEFT, kohya and official LTX layouts), fuse them into the weights in
place, and unfuse them exactly.

Fusing replaces a touched weight by a new tensor `W + (B * scale) @ A` and keeps the original tensor object
aside, so unfusing puts the very same bits back (no `W' - delta` round trip, which is not exact in floating
point). Only touched weights are kept; on an accelerator they are kept in host memory, so a fused LoRA
never needs a second copy of the transformer on the device.

A family gives a `KeyMapper` that turns a file's module path (the key without `.lora_A.weight` etc.) into
`component.module.path` of ditto's modules (diffusers names), or None for a key it does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ditto.errors import CheckpointError, InvalidParameter

KeyMapper = Callable[[str], "str | None"]

# Key endings -> role. PEFT/diffusers and the official LTX files use lora_A/lora_B; kohya uses down/up.
SUFFIXES = {
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora_down.weight": "down",
    ".lora_up.weight": "up",
    ".alpha": "alpha",
}
MAX_KEYS_SHOWN = 6


@dataclass(frozen=True)
class LoraPair:
    down: torch.Tensor  # A: [rank, in_features] (or a conv kernel with rank output channels)
    up: torch.Tensor  # B: [out_features, rank]
    multiplier: float  # alpha / rank (1 when the file names no alpha: the PEFT/official convention)


@dataclass
class LoraFile:
    path: str
    pairs: dict[str, LoraPair]  # "component.module.path" -> pair


def parse_lora_spec(spec: str | Path | tuple[str | Path, float]) -> tuple[Path, float]:
    """`PATH`, `PATH:SCALE` or `(path, scale)` -> (path, scale); the scale defaults to 1."""
    if isinstance(spec, tuple):
        path, scale = spec
        return Path(path), float(scale)
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return Path(head), float(tail)
        except ValueError:
            pass  # a colon inside the path, not a scale
    return Path(text), 1.0


def read_lora(path: str | Path, key_mapper: KeyMapper) -> LoraFile:
    """Read a .safetensors LoRA and name each pair by the ditto module it changes. Unknown keys are an error
    naming them: a silently skipped LoRA key is a wrong picture nobody can explain."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InvalidParameter("lora", str(path), "is not a file")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    groups, unknown = _group(state)
    adapter = _adapter_metadata(metadata)
    pairs: dict[str, LoraPair] = {}
    for module, parts in sorted(groups.items()):
        target = key_mapper(module)
        if target is None:
            unknown.append(module)
            continue
        if "down" not in parts or "up" not in parts:
            raise CheckpointError(
                f"{path}: LoRA module {module} lacks its {'up' if 'down' in parts else 'down'} matrix"
            )
        pairs[target] = LoraPair(parts["down"], parts["up"], _multiplier(module, parts, adapter))
    if unknown:
        shown = ", ".join(sorted(unknown)[:MAX_KEYS_SHOWN]) + (
            " ..." if len(unknown) > MAX_KEYS_SHOWN else ""
        )
        raise CheckpointError(f"{path}: {len(unknown)} LoRA keys name no module of this model: {shown}")
    if not pairs:
        raise CheckpointError(f"{path} holds no LoRA weights (no lora_A/lora_B or lora_down/lora_up keys)")
    return LoraFile(str(path), pairs)


def _group(state: dict[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    groups: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in state.items():
        for suffix, role in SUFFIXES.items():
            if key.endswith(suffix):
                groups.setdefault(key[: -len(suffix)], {})[role] = tensor
                break
        else:
            if "dora_scale" in key:
                raise CheckpointError(f"DoRA weights ({key}) are not supported; only plain LoRA")
            unknown.append(key)
    return groups, unknown


def _adapter_metadata(metadata: dict[str, str]) -> dict:
    """diffusers writes the PEFT config as JSON under `lora_adapter_metadata` (keys prefixed by the
    component in pipeline saves, e.g. `transformer.lora_alpha`); we drop the prefix."""
    raw = metadata.get("lora_adapter_metadata")
    if not raw:
        return {}
    config = json.loads(raw)
    return {
        key.split(".", 1)[1] if "." in key and not key.startswith("_") else key: v
        for key, v in config.items()
    }


def _multiplier(module: str, parts: dict[str, torch.Tensor], adapter: dict) -> float:
    rank = parts["down"].shape[0]
    if "alpha" in parts:  # kohya: a per-module alpha tensor
        return float(parts["alpha"].item()) / rank
    alpha = adapter.get("lora_alpha")
    for pattern, value in (adapter.get("alpha_pattern") or {}).items():
        if module.endswith(pattern):
            alpha = value
    if alpha is None:
        return 1.0  # no alpha anywhere: alpha == rank (diffusers/PEFT and the official LTX convention)
    return float(alpha) / (math.sqrt(rank) if adapter.get("use_rslora") else rank)


@dataclass
class FusedLayer:
    """One fused LoRA: the original tensor of every parameter it touched, to put back on unfuse."""

    name: str
    originals: dict[str, torch.Tensor] = field(default_factory=dict)


class LoraStack:
    """LoRAs fused in place into named modules, unfused in reverse order, bit for bit.

    `modules` maps a component name ("transformer", "connectors", ...) to its module; LoRA targets are
    "component.module.path". On an accelerator the originals are kept in host memory (`keep_device`).
    """

    def __init__(self, modules: dict[str, torch.nn.Module], keep_device: torch.device | None = None) -> None:
        self.modules = modules
        self.keep_device = keep_device
        self.layers: list[FusedLayer] = []

    def __len__(self) -> int:
        return len(self.layers)

    def fuse(self, lora: LoraFile, scale: float = 1.0) -> FusedLayer:
        layer = FusedLayer(f"{lora.path}:{scale}")
        targets = {
            name: self._parameter(name, lora.path) for name in lora.pairs
        }  # check all before changing any
        with torch.inference_mode(False), torch.no_grad():
            for name, pair in lora.pairs.items():
                if scale == 0.0:
                    continue  # exactly the base weights (W + 0 would turn -0.0 into +0.0)
                param = targets[name]
                original = param.data
                param.data = original + _delta(pair, scale, original)
                keep = self.keep_device
                layer.originals[name] = (
                    original if keep is None or keep == original.device else original.to(keep)
                )
        self.layers.append(layer)
        return layer

    def unfuse_last(self) -> None:
        layer = self.layers.pop()
        with torch.inference_mode(False), torch.no_grad():
            for name, original in layer.originals.items():
                param = self._parameter(name, layer.name)
                param.data = original.to(param.device, non_blocking=True)

    def unfuse_all(self) -> None:
        while self.layers:
            self.unfuse_last()

    def _parameter(self, target: str, source: str) -> torch.nn.Parameter:
        component, _, module_path = target.partition(".")
        try:
            module = self.modules[component].get_submodule(module_path)
        except (KeyError, AttributeError):
            module = None
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.nn.Parameter):
            raise CheckpointError(f"{source}: LoRA target {target} is not a weight of this model")
        return weight


def _delta(pair: LoraPair, scale: float, weight: torch.Tensor) -> torch.Tensor:
    """(B * scale) @ A in the weight's dtype, the official LTX fusing order (ltx_core fuse_loras)."""
    down = pair.down.to(weight.device, weight.dtype)
    up = pair.up.to(weight.device, weight.dtype)
    delta = (up.flatten(1) * (scale * pair.multiplier)) @ down.flatten(1)
    if delta.shape != weight.flatten(1).shape:
        raise CheckpointError(
            f"LoRA delta of shape {tuple(delta.shape)} does not fit a weight of shape {tuple(weight.shape)}"
        )
    return delta.view(weight.shape)
