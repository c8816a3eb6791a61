"""Validation helpers shared by every family's sampling parameters: one clear message per bad field."""

from __future__ import annotations

import dataclasses
from typing import Any

from ditto.errors import InvalidParameter


def check_multiple(field: str, value: int, multiple: int, minimum: int = 0) -> None:
    if not isinstance(value, int) or value <= 0 or value % multiple:
        nearest = (
            max(multiple, round(value / multiple) * multiple) if isinstance(value, (int, float)) else multiple
        )
        hint = f"try {max(nearest, minimum)}"
        raise InvalidParameter(field, value, f"is not a positive multiple of {multiple}", hint)
    if value < minimum:
        problem = f"is below the smallest size this model decodes ({minimum})"
        raise InvalidParameter(field, value, problem, f"try {minimum}")


def check_frames(field: str, value: int, temporal: int) -> None:
    if not isinstance(value, int) or value < 1 or (value - 1) % temporal:
        nearest = (
            max(1, round((value - 1) / temporal) * temporal + 1) if isinstance(value, (int, float)) else 1
        )
        raise InvalidParameter(field, value, f"is not {temporal}k+1", f"try {nearest}")


def check_at_least(field: str, value: float, minimum: float, kind: type = float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
        raise InvalidParameter(field, value, f"must be a {kind.__name__} >= {minimum}")


def check_prompt(field: str, prompt: Any) -> list[str]:
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if (
        not isinstance(prompts, list)
        or not prompts
        or not all(isinstance(p, str) and p.strip() for p in prompts)
    ):
        raise InvalidParameter(field, prompt, "must be a non-empty string or a list of them")
    return prompts


def reject_unknown(params_class: type, kwargs: dict[str, Any], family: str) -> None:
    """A keyword the family does not take is an error naming it (never silently ignored)."""
    known = {f.name for f in dataclasses.fields(params_class)}
    for name in kwargs:
        if name not in known:
            raise InvalidParameter(
                name, kwargs[name], f"is not a parameter of {family}", f"valid: {sorted(known)}"
            )
