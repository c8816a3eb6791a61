"""Validation helpers shared by every family's sampling parameters: one clear message per bad field."""

from __future__ import annotations

import dataclasses
from typing import Any

from ditto.errors import InvalidParameter
from ditto.fields import PYTHON_ONLY, family_fields


def check_multiple(field: str, value: int, multiple: int, minimum: int = 0) -> None:
    if not isinstance(value, int) or value <= 0 or value % multiple:
        nearest = (
            max(multiple, round(value / multiple) * multiple) if isinstance(value, (int, float)) else multiple
        )
        nearest = max(nearest, minimum)
        raise InvalidParameter(
            field, value, f"is not a positive multiple of {multiple}", f"try {nearest}", nearest
        )
    if value < minimum:
        problem = f"is below the smallest size this model decodes ({minimum})"
        raise InvalidParameter(field, value, problem, f"try {minimum}", minimum)


def check_frames(field: str, value: int, temporal: int) -> None:
    if not isinstance(value, int) or value < 1 or (value - 1) % temporal:
        nearest = (
            max(1, round((value - 1) / temporal) * temporal + 1) if isinstance(value, (int, float)) else 1
        )
        raise InvalidParameter(field, value, f"is not {temporal}k+1", f"try {nearest}")


def check_at_least(field: str, value: float, minimum: float, kind: type = float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
        raise InvalidParameter(field, value, f"must be a {kind.__name__} >= {minimum}")


def check_count(field: str, value: Any, minimum: int = 1) -> int:
    """A count (steps, images, tokens): an integer >= minimum; 2.5 or True is refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameter(field, value, f"must be an integer >= {minimum}")
    return value


def check_seed(field: str, seed: Any) -> int | None:
    """None (a fresh seed) or a non-negative integer."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidParameter(field, seed, "must be a non-negative integer")
    return seed


def check_one_of(field: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise InvalidParameter(field, value, "is not known", f"use one of {choices}")
    return value


def check_unit_sigmas(field: str, sigmas: Any) -> list[float] | None:
    """None, or a non-empty list of numbers in (0, 1] (a flow-match schedule before its final 0)."""
    if sigmas is None:
        return None
    try:
        values = [float(s) for s in sigmas]
    except (TypeError, ValueError):
        raise InvalidParameter(field, sigmas, "is not a list of numbers") from None
    if not values or any(not 0.0 < s <= 1.0 for s in values):
        raise InvalidParameter(field, sigmas, "must be non-empty with every value in (0, 1]")
    return values


def check_prompt(field: str, prompt: Any) -> list[str]:
    """A string or a non-empty list (or tuple) of non-blank strings -> the list of prompts; an error names
    the offending prompt."""
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if prompt is None or (isinstance(prompts, (list, tuple)) and not prompts):
        raise InvalidParameter(field, prompt, "is missing", "give a text prompt or a list of prompts")
    if not isinstance(prompts, (list, tuple)):
        raise InvalidParameter(field, prompt, "is not text", "give a string or a list of strings")
    for text in prompts:
        if not isinstance(text, str) or not text.strip():
            raise InvalidParameter(field, text, "is empty", "give a non-empty text prompt")
    return list(prompts)


# Request fields of the video families: an image family names them as such rather than as unknown.
VIDEO_FIELDS = ("num_frames", "frame_rate", "fps", "audio")


def reject_unknown(
    params_class: type, kwargs: dict[str, Any], family: str, video_fields: tuple[str, ...] = ()
) -> None:
    """A keyword the family does not take is an error naming it (never silently ignored) and listing the
    family's parameters: its fields of the request table (fields.py), then its Python-only ones; an image
    family passes `video_fields` so a video parameter is named as one."""
    known = {f.name for f in dataclasses.fields(params_class)}
    for name in kwargs:
        if name in known:
            continue
        if name in video_fields:
            raise InvalidParameter(name, kwargs[name], "is a video parameter", f"{family} makes still images")
        fields = [entry.name for entry in family_fields(family) if entry.name in known]
        python = [field for field in PYTHON_ONLY if field in known]
        hint = f"valid: {fields}" + (f"; from Python also {python}" if python else "")
        raise InvalidParameter(name, kwargs[name], f"is not a parameter of {family}", hint)
