"""LoRA files: read them (diffusers/PEFT, kohya and official LTX layouts), fuse them into the weights in
place, and unfuse them exactly.

Fusing replaces a touched weight by a new tensor `W + (B * scale) @ A` and keeps the original tensor object
aside, so unfusing puts the very same bits back (no `W' - delta` round trip, which is not exact in floating
point). Only touched weights are kept; on an accelerator they are kept in host memory, so a fused LoRA
never needs a second copy of the transformer on the device.

A family gives a `KeyMapper` that turns a file's module path (the key without `.lora_A.weight` etc.) into
`component.module.path` of ditto's modules (diffusers names), a `RowBlocks` when one module of the file is
several of ours (a fused qkv projection), or None for a key it does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ditto.errors import CheckpointError, InvalidParameter
from ditto.loading.folder import error_line


@dataclass(frozen=True)
class RowBlocks:
    """One module of the file stands for several row blocks of ours. Its up matrix is cut into
    `len(order)` equal row blocks, put in `order`, and shared out evenly over `targets`; the down matrix is
    shared (so the delta of each target is exactly its rows of the file's delta).

    A fused qkv -> to_q/to_k/to_v is `RowBlocks((q, k, v), (0, 1, 2))`; a (shift, scale) modulation stored
    as (scale, shift) by ditto is `RowBlocks((name,), (1, 0))`."""

    targets: tuple[str, ...]
    order: tuple[int, ...]


KeyMapper = Callable[[str], "str | RowBlocks | None"]

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
    """`PATH`, `PATH:SCALE` or `(path, scale)` -> (path, scale); the scale defaults to 1. A tail after the
    last colon that is neither a number nor part of a path (an existing file, or a tail with a slash) is a
    bad scale, named as one."""
    if isinstance(spec, tuple):
        path, scale = spec
        return Path(path), _scale(spec, scale)
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if not sep or not head or Path(text).exists() or "/" in tail or "\\" in tail:
        return Path(text), 1.0  # no scale, or a colon inside the path
    return Path(head), _scale(text, tail)


def _scale(spec: Any, value: Any) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale):
        raise InvalidParameter(
            "lora",
            str(spec),
            f"has a scale {value!r} that is not a number",
            "PATH:SCALE, e.g. style.safetensors:0.8",
        )
    return scale


def check_lora_file(path: Path) -> None:
    """The file exists and is a readable safetensors file (its header is read, no tensor): checked before a
    model loads, so a wrong path or a broken download costs no loading time."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise InvalidParameter("lora", str(path), "is not a file", "give the path of a .safetensors LoRA")
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.metadata()
    except (SafetensorError, OSError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> InvalidParameter:
    problem = f"is not a readable safetensors file ({error_line(exc)})"
    return InvalidParameter("lora", str(path), problem, "is the download complete?")


def read_lora(
    path: str | Path,
    key_mapper: KeyMapper,
    modules: dict[str, torch.nn.Module] | None = None,
    model: str = "this model",
) -> LoraFile:
    """Read a .safetensors LoRA and name each pair by the ditto module it changes. Unknown keys are an error
    naming them: a silently skipped LoRA key is a wrong picture nobody can explain. With `modules` (component
    name -> module), a key whose target is not a weight there counts as unknown too, so a LoRA for another
    model is refused before anything is touched."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_lora_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:  # a header that reads, over tensors that do not: a cut file
        raise _unreadable(path, exc) from None
    groups, unknown = _group(state)
    adapter = _adapter_metadata(metadata)
    pairs: dict[str, LoraPair] = {}
    for module, parts in sorted(groups.items()):
        target = key_mapper(module)
        if target is None or (modules is not None and not _all_weights(modules, target)):
            unknown.append(module)
            continue
        if "down" not in parts or "up" not in parts:
            raise CheckpointError(
                f"{path}: LoRA module {module} lacks its {'up' if 'down' in parts else 'down'} matrix"
            )
        pair = LoraPair(parts["down"], parts["up"], _multiplier(module, parts, adapter))
        for name, piece in _split(pair, target, f"{path}: {module}"):
            if name in pairs:
                raise CheckpointError(
                    f"{path}: two LoRA keys change the same module {name} (one is {module})"
                )
            pairs[name] = piece
    if unknown:
        shown = ", ".join(sorted(unknown)[:MAX_KEYS_SHOWN]) + (
            " ..." if len(unknown) > MAX_KEYS_SHOWN else ""
        )
        raise InvalidParameter(
            "lora",
            str(path),
            f"has {len(unknown)} keys that name no module of {model}: {shown}",
            "is it a LoRA for another model?",
        )
    if not pairs:
        raise CheckpointError(f"{path} holds no LoRA weights (no lora_A/lora_B or lora_down/lora_up keys)")
    return LoraFile(str(path), pairs)


def _split(pair: LoraPair, target: str | RowBlocks, where: str) -> list[tuple[str, LoraPair]]:
    if isinstance(target, str):
        return [(target, pair)]
    rows = pair.up.shape[0]
    if rows % len(target.order) or rows % len(target.targets):
        raise CheckpointError(f"{where}: {rows} up rows do not split into {len(target.order)} equal blocks")
    blocks = pair.up.chunk(len(target.order), dim=0)
    up = torch.cat([blocks[i] for i in target.order], dim=0)
    return [
        (name, LoraPair(pair.down, piece.contiguous(), pair.multiplier))
        for name, piece in zip(target.targets, up.chunk(len(target.targets), dim=0))
    ]


def _all_weights(modules: dict[str, torch.nn.Module], target: str | RowBlocks) -> bool:
    names = (target,) if isinstance(target, str) else target.targets
    return all(_find_weight(modules, name) is not None for name in names)


def raise_if_problems(lora: LoraFile, problems: list[str], what: str, hint: str) -> None:
    """One InvalidParameter naming the first few targets that cannot take the LoRA (nothing if none)."""
    if problems:
        shown = ", ".join(problems[:MAX_KEYS_SHOWN]) + (" ..." if len(problems) > MAX_KEYS_SHOWN else "")
        raise InvalidParameter("lora", lora.path, f"{what}: {shown}", hint)


def _find_weight(modules: dict[str, torch.nn.Module], target: str) -> torch.nn.Parameter | None:
    component, _, module_path = target.partition(".")
    try:
        module = modules[component].get_submodule(module_path)
    except (KeyError, AttributeError):
        return None
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, torch.nn.Parameter) else None


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
        # Called with the parameters a fuse or unfuse wrote (offload copies device values to their host homes).
        self.on_write: Callable[[list[torch.nn.Parameter]], None] | None = None

    def __len__(self) -> int:
        return len(self.layers)

    def fuse(self, lora: LoraFile, scale: float = 1.0) -> FusedLayer:
        layer = FusedLayer(f"{lora.path}:{scale}")
        targets = self._check(lora)  # all names and shapes, before changing any weight
        with torch.inference_mode(False), torch.no_grad():
            for name, pair in lora.pairs.items():
                if scale == 0.0:
                    continue  # exactly the base weights (W + 0 would turn -0.0 into +0.0)
                param = targets[name]
                original = param.data
                fused = original + _delta(pair, scale, original)
                keep = self.keep_device
                kept = original.clone() if keep is None or keep == original.device else original.to(keep)
                layer.originals[name] = kept
                # In place, not a new tensor: a weight may be a view into a fused QKV matrix
                # (fuse_projections), which must see the LoRA too.
                param.data.copy_(fused)
        self.layers.append(layer)
        self._written([targets[name] for name in layer.originals])
        return layer

    def unfuse_last(self) -> None:
        layer = self.layers.pop()
        written = []
        with torch.inference_mode(False), torch.no_grad():
            for name, original in layer.originals.items():
                param = self._parameter(name, layer.name)
                param.data.copy_(original)
                written.append(param)
        self._written(written)

    def _written(self, params: list[torch.nn.Parameter]) -> None:
        if self.on_write is not None and params:
            self.on_write(params)

    def unfuse_all(self) -> None:
        while self.layers:
            self.unfuse_last()

    def _check(self, lora: LoraFile) -> dict[str, torch.nn.Parameter]:
        """Every target of the LoRA as a parameter; wrong names or shapes are one error naming them."""
        targets, problems = {}, []
        for name, pair in lora.pairs.items():
            param = _find_weight(self.modules, name)
            if param is None:
                problems.append(f"{name} (no such weight)")
                continue
            delta_shape = (pair.up.flatten(1).shape[0], pair.down.flatten(1).shape[1])
            if delta_shape != tuple(param.flatten(1).shape):
                problems.append(f"{name} (LoRA {delta_shape} vs weight {tuple(param.shape)})")
            targets[name] = param
        raise_if_problems(lora, problems, "does not fit this model", "is it a LoRA for another model?")
        return targets

    def _parameter(self, target: str, source: str) -> torch.nn.Parameter:
        weight = _find_weight(self.modules, target)
        if weight is None:
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
