"""The step-cache spec: one string for every surface (`generate(cache=...)`, `--cache`, the server's `cache`
field and `ditto serve --cache`).

    SPEC   := "none" | PRESET | METHOD [":" KEY=VALUE ("," KEY=VALUE)*]
    METHOD := "dbcache" | "mask" | PRESET          (a preset with overrides: "fast:Fn=1,taylorseer=1")
    PRESET := "slow" | "medium" | "fast" | "ultra"  (static masks computing 18/15/11/8 of 28 steps)

dbcache: Cache-DiT's DBCache. Every pass computes the first Fn blocks; when the relative L1 change of their
    residual since the kind's last computed pass is under `threshold` (LTX-2: the video's under `threshold`
    and the audio's under `audio_threshold`), the middle blocks are skipped and their residual from that
    computed pass is added instead (or TaylorSeer's extrapolation of it); the last Bn blocks always run.
    No skip in the first `warmup` steps, at most `max_cached` cached passes in a row and `max_cached_total`
    in all (-1: no cap). Defaults: the serving defaults of SGLang and vLLM-Omni (F1B0, 0.24, 4, 3).
mask: a static step mask: the steps in `compute` (or the preset's) run every block, the others reuse the
    kind's last computed residual of the blocks after the first Fn and before the last Bn (default 0, 0:
    the whole transformer is skipped).

Keys are case-insensitive (Fn, fn). A bad spec is one InvalidParameter naming the key, and the valid keys
with their ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ditto.acceleration.step_cache.masks import PRESETS, parse_step_list, preset_steps
from ditto.errors import InvalidParameter

FIELD = "cache"
OFF = ("", "none", "off")


@dataclass(frozen=True)
class Key:
    name: str  # as shown (Fn); matched case-insensitively
    kind: type  # int | float | str
    low: float | None = None
    high: float | None = None
    help: str = ""

    def describe(self) -> str:
        if self.name == "preset":
            return f"preset ({' | '.join(PRESETS)})"
        if self.name == "compute":
            return "compute (steps: 0-7+12+20, or all)"
        bounds = f">= {self.low:g}" if self.high is None else f"{self.low:g}..{self.high:g}"
        return f"{self.name} ({self.kind.__name__} {bounds})"


_FN = Key("Fn", int, 1)
_BN = Key("Bn", int, 0)
_TAYLOR = Key("taylorseer", int, 0, 2)
KEYS: dict[str, tuple[Key, ...]] = {
    "dbcache": (
        _FN, _BN, Key("threshold", float, 0.0), Key("audio_threshold", float, 0.0), Key("warmup", int, 0),
        Key("max_cached", int, -1), Key("max_cached_total", int, -1), _TAYLOR,
    ),
    "mask": (Key("preset", str), Key("compute", str), Key("Fn", int, 0), _BN, _TAYLOR),
}  # fmt: skip


@dataclass(frozen=True)
class CacheSpec:
    """A parsed spec. `text` is the spec as given (the Result's stats quote it)."""

    text: str
    method: str  # "dbcache" | "mask"
    fn: int = 1
    bn: int = 0
    threshold: float = 0.24
    audio_threshold: float | None = None  # None: `threshold`
    warmup: int = 4
    max_cached: int = 3  # cached passes in a row; -1: no cap
    max_cached_total: int = -1
    taylorseer: int = 0  # TaylorSeer order; 0: the residual is reused as it is
    preset: str | None = None
    compute: tuple[int, ...] | None = None  # explicit steps; () = every step

    def computed_steps(self, num_steps: int) -> frozenset[int] | None:
        """The steps a mask computes in a loop of `num_steps`; None for dbcache."""
        if self.method != "mask":
            return None
        if self.preset is not None:
            return preset_steps(self.preset, num_steps)
        return frozenset(self.compute or range(num_steps))

    @property
    def thresholds(self) -> tuple[float, float]:
        """(video or image, audio)."""
        audio = self.threshold if self.audio_threshold is None else self.audio_threshold
        return self.threshold, audio


def parse_cache_spec(text: Any) -> CacheSpec | None:
    """The spec, or None for no cache (None, "", "none", "off")."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidParameter(FIELD, text, "is not a string", _methods_hint())
    stripped = text.strip()
    if stripped.lower() in OFF:
        return None
    head, _, body = stripped.partition(":")
    method = head.strip().lower()
    if method in PRESETS:
        base = CacheSpec(stripped, "mask", fn=0, preset=method)
    elif method == "mask":
        base = CacheSpec(stripped, "mask", fn=0)
    elif method == "dbcache":
        base = CacheSpec(stripped, "dbcache")
    else:
        raise InvalidParameter(FIELD, text, f"names no cache method ({head.strip()!r})", _methods_hint())
    spec = replace(base, **_values(text, "mask" if method in PRESETS else method, body))
    _check_mask(text, spec)
    return spec


def check_cache_spec(text: Any) -> Any:
    """A family's validation of the `cache` field: the value as given, once it parses."""
    parse_cache_spec(text)
    return text


def _values(text: str, method: str, body: str) -> dict[str, Any]:
    keys = {key.name.lower(): key for key in KEYS[method]}
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        name, equals, raw = item.partition("=")
        key = keys.get(name.strip().lower())
        if key is None or not equals:
            problem = f"has an unknown key {name.strip()!r}" if key is None else f"gives {name!r} no value"
            raise InvalidParameter(FIELD, text, problem, _keys_hint(method))
        field = "fn" if key.name == "Fn" else "bn" if key.name == "Bn" else key.name
        values[field] = _value(text, method, key, raw.strip())
    return values


def _value(text: str, method: str, key: Key, raw: str) -> Any:
    if key.name == "preset":
        if raw.lower() not in PRESETS:
            raise InvalidParameter(FIELD, text, f"has preset={raw!r}", _keys_hint(method))
        return raw.lower()
    if key.name == "compute":
        steps = parse_step_list(raw.lower())
        if steps is None:
            raise InvalidParameter(FIELD, text, f"has compute={raw!r}, not a step list", _keys_hint(method))
        return steps
    try:
        value = key.kind(raw)
    except ValueError:
        value = None
    if value is None or value < key.low or (key.high is not None and value > key.high):
        raise InvalidParameter(FIELD, text, f"has {key.name}={raw!r} out of range", _keys_hint(method))
    return value


def _check_mask(text: str, spec: CacheSpec) -> None:
    if spec.method != "mask":
        return
    if (spec.preset is None) == (spec.compute is None):
        problem = "gives both a preset and compute=" if spec.preset else "names no steps to compute"
        raise InvalidParameter(
            FIELD, text, problem, "give preset=NAME or compute=STEPS (mask:compute=0-7+12)"
        )


def _methods_hint() -> str:
    return f"use none, a preset ({', '.join(PRESETS)}), dbcache[:KEY=VALUE,...] or mask:KEY=VALUE,..."


def _keys_hint(method: str) -> str:
    return f"{method} keys: " + ", ".join(key.describe() for key in KEYS[method])
