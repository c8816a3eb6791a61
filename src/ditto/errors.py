"""Errors a user can act on: each names what was wrong, the value, and what would be valid."""

from __future__ import annotations

from typing import Any


class DittoError(Exception):
    """Base of every error ditto raises on purpose; the CLI prints these without a traceback."""


class InvalidParameter(DittoError, ValueError):
    """A request parameter is out of range: `field=value is <problem>; <hint>`. `nearest`, where a check
    knows it, is the closest valid value (the server snaps OpenAI clients' sizes to it)."""

    def __init__(self, field: str, value: Any, problem: str, hint: str = "", nearest: Any = None) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.hint = hint
        self.nearest = nearest
        message = f"{field}={value!r} {problem}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class CheckpointError(DittoError):
    """A checkpoint folder or file is not something ditto can load (unknown, incomplete, mismatched)."""


class JobCancelled(DittoError):
    """Raised from a progress callback to stop a generation between steps."""


class ParallelError(DittoError):
    """A process of a multi-process engine failed or vanished; the engine cannot run again (load it anew)."""
