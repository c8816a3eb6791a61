"""ditto: run and serve diffusion transformers faithfully and fast."""

from ditto.engine import Engine
from ditto.errors import CheckpointError, DittoError, InvalidParameter
from ditto.result import Result

__all__ = ["Engine", "Result", "DittoError", "InvalidParameter", "CheckpointError"]
__version__ = "0.1.0"
