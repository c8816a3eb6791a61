"""A model's constructor arguments, kept for pipelines that read e.g. `transformer.config.patch_size`."""

from __future__ import annotations

from typing import Any

from ditto.errors import CheckpointError

# Config values the native transformer implements; a checkpoint asking for another one is not loadable.
SUPPORTED = {"activation_fn": "gelu-approximate", "qk_norm": "rms_norm_across_heads"}


class ModelConfig(dict):
    """Dict with attribute access (what diffusers' FrozenDict offers its callers). Treat it as read-only:
    changing it does not rebuild the model."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


def capture(arguments: dict[str, Any]) -> ModelConfig:
    """ModelConfig from an __init__'s locals(), without self and the closure cell."""
    return ModelConfig({k: v for k, v in arguments.items() if k not in ("self", "__class__")})


def check_supported(config: ModelConfig) -> None:
    """A checkpoint config this model cannot run is a checkpoint problem (not a request's)."""
    for name, supported in SUPPORTED.items():
        if config[name] != supported:
            raise CheckpointError(
                f"LTX-2 transformer config {name}={config[name]!r} is not supported (ditto runs {supported!r})"
            )
