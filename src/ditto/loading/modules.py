"""Build a native module on the meta device and load weights into it strictly, with no double allocation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ditto.errors import CheckpointError
from ditto.loading.folder import load_state_dict, read_config

MAX_KEYS_SHOWN = 8


def check_keys(component: str, expected: set[str], found: set[str]) -> None:
    """Strict key check: a missing or unexpected weight is an error naming the keys (never a silent skip)."""
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if not missing and not unexpected:
        return
    lines = [f"{component}: the checkpoint's weights do not match the model"]
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            shown = ", ".join(keys[:MAX_KEYS_SHOWN]) + (" ..." if len(keys) > MAX_KEYS_SHOWN else "")
            lines.append(f"  {len(keys)} {label}: {shown}")
    raise CheckpointError("\n".join(lines))


def load_into(
    module: torch.nn.Module,
    state: dict[str, torch.Tensor],
    component: str,
    dtype: torch.dtype,
    device: str | torch.device,
) -> torch.nn.Module:
    """Assign checkpoint tensors to a meta-device module (strict), then move buffers and cast."""
    check_keys(component, set(module.state_dict().keys()), set(state.keys()))
    cast = {
        name: tensor.to(device=device, dtype=dtype) if tensor.is_floating_point() else tensor.to(device)
        for name, tensor in state.items()
    }
    module.load_state_dict(cast, strict=True, assign=True)
    for name, buffer in list(module.named_buffers()):
        if buffer.is_meta:
            raise CheckpointError(f"{component}: buffer {name} was not filled by the checkpoint")
    return module.eval().requires_grad_(False)


def build_native(
    factory: Callable[[], torch.nn.Module],
    component_dir: Path,
    dtype: torch.dtype,
    device: str | torch.device,
) -> torch.nn.Module:
    """Construct with `factory` on the meta device (no memory), then fill from `component_dir`'s safetensors."""
    with torch.device("meta"):
        module = factory()
    # Tensors are read straight onto the target device: no full CPU copy of a 19B model on the way.
    state = load_state_dict(component_dir, device)
    return load_into(module, state, component_dir.name, dtype, device)


def build_from_config(
    model_class: Callable[..., torch.nn.Module],
    folder: Path,
    component: str,
    dtype: torch.dtype,
    device: str | torch.device,
) -> torch.nn.Module:
    """`model_class(**config)` from `folder/component/config.json`, filled from that folder's weights.

    A config the class cannot take (an unknown or missing key; the model's own checks raise CheckpointError)
    is a CheckpointError naming the folder: the checkpoint is at fault, not the request.
    """
    config: dict[str, Any] = read_config(folder, component)

    def construct() -> torch.nn.Module:
        try:
            return model_class(**config)
        except (TypeError, CheckpointError) as exc:
            raise CheckpointError(f"{folder / component}: unsupported config ({exc})") from None

    return build_native(construct, folder / component, dtype, device)
