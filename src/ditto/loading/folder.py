"""Reading diffusers-format checkpoint folders: model_index.json, config.json, sharded safetensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ditto.errors import CheckpointError

WEIGHT_NAMES = ("diffusion_pytorch_model", "model")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None


def read_model_index(folder: Path) -> dict[str, Any]:
    return read_json(folder / "model_index.json")


def read_config(folder: Path, component: str) -> dict[str, Any]:
    """A component's config.json with the diffusers bookkeeping keys (those starting with '_') removed."""
    config = read_json(folder / component / "config.json")
    return {key: value for key, value in config.items() if not key.startswith("_")}


def config_value(config: dict[str, Any], name: str, owner: str) -> Any:
    """`name` from a config.json, or, where the file leaves it out, the default of the constructor that
    reads it (`owner` is "module:Class", imported only then), as loading the model would give."""
    if name in config:
        return config[name]
    import importlib
    import inspect

    module, _, attr = owner.partition(":")
    return inspect.signature(getattr(importlib.import_module(module), attr)).parameters[name].default


def weight_files(component_dir: Path) -> list[Path]:
    """The safetensors files of a component: one file, or the shards an index.json names."""
    for stem in WEIGHT_NAMES:
        index = component_dir / f"{stem}.safetensors.index.json"
        if index.exists():
            shards = sorted(set(read_json(index)["weight_map"].values()))
            return [component_dir / shard for shard in shards]
        single = component_dir / f"{stem}.safetensors"
        if single.exists():
            return [single]
    raise CheckpointError(
        f"{component_dir} holds no safetensors weights (looked for {', '.join(WEIGHT_NAMES)})"
    )


def load_state_dict(component_dir: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for file in weight_files(component_dir):
        if not file.exists():
            raise CheckpointError(f"shard {file} named in the index is missing")
        state.update(read_weights(file, device))
    return state


def read_weights(file: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """One safetensors file; a broken or cut one is a CheckpointError naming it, not a traceback."""
    from safetensors import SafetensorError

    try:
        return load_file(str(file), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{file} is not a readable safetensors file ({error_line(exc)}); is the download complete?"
        ) from None


def error_line(exc: Exception) -> str:
    """A library's error as one short line for a message: its type and its first line."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
