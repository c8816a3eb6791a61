"""What a form needs beyond the field table (GET /v1/fields): the family's defaults for this checkpoint, sizes
the model can make, the same per LTX-2 pipeline (each has its own defaults: HQ's 15 steps at 1920x1088),
and the LoRAs fused at load. All of it comes from the family's own `validate` (`defaults` for a pipeline that
needs an input first), so the page never hard-codes a model's numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ditto.errors import InvalidParameter
from ditto.fields import FIELDS

PROBE = "form defaults probe"
# Aspect ratios offered as size presets, each at the default size's area.
ASPECTS = ((1, 1), (16, 9), (9, 16), (4, 3), (3, 4), (3, 2), (2, 3))
FALLBACK_SIDE = 1024  # image families leave the size to the checkpoint when none is asked (1024x1024)
SNAP_TRIES = 6


def defaults(engine: Any, names: list[str], **extra: Any) -> dict[str, Any]:
    """The value each named field takes when a request (with `extra` keywords) leaves it out (JSON scalars
    only; a family that decides later, e.g. FLUX.2's size from a reference image, leaves it out)."""
    probe = getattr(engine, "defaults", None) or engine.validate  # a stand-in engine may only validate
    try:
        params = probe(prompt=PROBE, **extra)
    except InvalidParameter:
        return {}
    found = {name: getattr(params, name, None) for name in names if name != "prompt"}
    return {name: value for name, value in found.items() if isinstance(value, (bool, int, float, str))}


def probe(
    engine: Any, width: int, height: int, **extra: Any
) -> tuple[tuple[int, int] | None, InvalidParameter | None]:
    """Validate at the nearest size to width x height that the family accepts (with `extra` keywords):
    (that size, None), or (None, the error that is not a size to snap to)."""
    size = {"width": width, "height": height}
    for _ in range(SNAP_TRIES):
        try:
            engine.validate(prompt=PROBE, **size, **extra)
            return (size["width"], size["height"]), None
        except InvalidParameter as exc:
            if exc.field not in size or exc.nearest is None or exc.nearest == size[exc.field]:
                return None, exc
            size[exc.field] = exc.nearest
    return None, None


def snapped_size(engine: Any, width: int, height: int, **extra: Any) -> tuple[int, int] | None:
    """The nearest size to width x height that the family accepts (with `extra` keywords), or None."""
    return probe(engine, width, height, **extra)[0]


def pipeline_status(
    engine: Any, found: dict[str, Any], pipelines: list[str]
) -> tuple[list[str], dict[str, str]]:
    """(The pipelines this checkpoint runs with no input file at the default size or one near it, those it
    cannot run whatever the inputs, each with why). The second come from the family's own error when it
    names `pipeline` (LTX-2's half-size recipes without a latent upsampler); one that only waits for an input
    file (a retake's video) names that field, and is in neither. None is unavailable where none runs (a
    family whose requests take no pipeline)."""
    width, height = found.get("width") or FALLBACK_SIDE, found.get("height") or FALLBACK_SIDE
    runs: list[str] = []
    missing: dict[str, str] = {}
    for name in pipelines:
        size, error = probe(engine, width, height, pipeline=name)
        if size is not None:
            runs.append(name)
        elif error is not None and error.field == "pipeline":
            missing[name] = error.problem
    return runs, (missing if runs else {})


def size_presets(engine: Any, found: dict[str, Any], max_pixels: int, runs: list[str]) -> list[str]:
    """'WxH' sizes at the default size's area in common aspect ratios, each valid for every pipeline in
    `runs` (LTX-2: multiples of 32, of 64 for two-stage), within the server's max_pixels."""
    width, height = found.get("width") or FALLBACK_SIDE, found.get("height") or FALLBACK_SIDE
    area = min(width * height, max_pixels)
    presets: list[str] = []
    for across, down in ((width, height), *ASPECTS):
        side = math.sqrt(area * across / down)
        size: tuple[int, int] | None = (round(side), round(side * down / across))
        for name in runs or [None]:
            extra = {"pipeline": name} if name else {}
            size = snapped_size(engine, *size, **extra) if size else None
        if size and size[0] * size[1] <= max_pixels and f"{size[0]}x{size[1]}" not in presets:
            presets.append(f"{size[0]}x{size[1]}")
    return presets


def pipeline_forms(
    engine: Any,
    names: list[str],
    base: dict[str, Any],
    max_pixels: int,
    pipelines: list[str],
    runs: list[str],
) -> dict[str, dict[str, Any]]:
    """Per LTX-2 pipeline: its own defaults where they differ from the checkpoint's (the page lays them over
    those: LTX-2's 1 KB official negative prompt is not sent once per pipeline), and its size presets at its
    default size's area. A pipeline that cannot be probed alone (it needs an input file first) gets sizes
    valid for every runnable one. `base`: the checkpoint's defaults (`defaults(engine, names)`)."""
    forms: dict[str, dict[str, Any]] = {}
    for name in pipelines:
        found = defaults(engine, names, pipeline=name)
        if not found:
            continue
        sized = FIELDS["width"].takes(name)  # a retake's size is its source video's: no presets
        presets = size_presets(engine, found, max_pixels, [name] if name in runs else runs) if sized else []
        own = {key: value for key, value in found.items() if base.get(key, object()) != value}
        forms[name] = {"defaults": own, "size_presets": presets}
    return forms


def lora_names(engine: Any) -> list[str]:
    """The LoRA files fused at load (`ditto serve --lora`), by file name (never a server path)."""
    options = getattr(engine, "options", None)
    loras = getattr(options, "loras", ()) or ()
    return [Path(str(spec)).name for spec in loras]
