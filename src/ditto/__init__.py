"""ditto: run and serve diffusion transformers faithfully and fast.

The public names load on first use (PEP 562): `import ditto` and `ditto --help` / `--version` stay fast,
and torch is imported only by what needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Engine", "Result", "DittoError", "InvalidParameter", "CheckpointError"]
__version__ = "0.1.0"

_PUBLIC = {
    "Engine": "ditto.engine",
    "Result": "ditto.result",
    "DittoError": "ditto.errors",
    "InvalidParameter": "ditto.errors",
    "CheckpointError": "ditto.errors",
}

if TYPE_CHECKING:
    from ditto.engine import Engine
    from ditto.errors import CheckpointError, DittoError, InvalidParameter
    from ditto.result import Result


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'ditto' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
