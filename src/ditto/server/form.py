"""What a form needs beyond the field table (GET /v1/fields): the family's defaults for this checkpoint, sizes
the model can make, and the LoRAs fused at load. All of it comes from the family's own `validate`, so the
page never hard-codes a model's numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ditto.errors import InvalidParameter

PROBE = "form defaults probe"
# Aspect ratios offered as size presets, each at the default size's area.
ASPECTS = ((1, 1), (16, 9), (9, 16), (4, 3), (3, 4), (3, 2), (2, 3))
FALLBACK_SIDE = 1024  # image families leave the size to the checkpoint when none is asked (1024x1024)
SNAP_TRIES = 6


def defaults(engine: Any, names: list[str]) -> dict[str, Any]:
    """The value each named field takes when a request leaves it out (JSON scalars only; a family that
    decides later, e.g. FLUX.2's size from a reference image, leaves it out)."""
    try:
        params = engine.validate(prompt=PROBE)
    except InvalidParameter:
        return {}
    found = {name: getattr(params, name, None) for name in names if name != "prompt"}
    return {name: value for name, value in found.items() if isinstance(value, (bool, int, float, str))}


def snapped_size(engine: Any, width: int, height: int, **extra: Any) -> tuple[int, int] | None:
    """The nearest size to width x height that the family accepts (with `extra` keywords), or None."""
    size = {"width": width, "height": height}
    for _ in range(SNAP_TRIES):
        try:
            engine.validate(prompt=PROBE, **size, **extra)
            return size["width"], size["height"]
        except InvalidParameter as exc:
            if exc.field not in size or exc.nearest is None or exc.nearest == size[exc.field]:
                return None
            size[exc.field] = exc.nearest
    return None


def size_presets(engine: Any, found: dict[str, Any], max_pixels: int, pipelines: list[str]) -> list[str]:
    """'WxH' sizes at the default size's area in common aspect ratios, each valid for every pipeline the
    checkpoint runs (LTX-2: multiples of 32, of 64 for two-stage), within the server's max_pixels."""
    width, height = found.get("width") or FALLBACK_SIDE, found.get("height") or FALLBACK_SIDE
    area = min(width * height, max_pixels)
    runnable = [name for name in pipelines if snapped_size(engine, width, height, pipeline=name)]
    presets: list[str] = []
    for across, down in ((width, height), *ASPECTS):
        side = math.sqrt(area * across / down)
        size: tuple[int, int] | None = (round(side), round(side * down / across))
        for name in runnable or [None]:
            extra = {"pipeline": name} if name else {}
            size = snapped_size(engine, *size, **extra) if size else None
        if size and size[0] * size[1] <= max_pixels and f"{size[0]}x{size[1]}" not in presets:
            presets.append(f"{size[0]}x{size[1]}")
    return presets


def lora_names(engine: Any) -> list[str]:
    """The LoRA files fused at load (`ditto serve --lora`), by file name (never a server path)."""
    options = getattr(engine, "options", None)
    loras = getattr(options, "loras", ()) or ()
    return [Path(str(spec)).name for spec in loras]
