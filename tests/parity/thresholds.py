"""Parity thresholds are data: tests/parity/thresholds*.json. A failing check prints measured vs allowed."""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_thresholds() -> dict:
    merged: dict = {}
    for path in sorted(HERE.glob("thresholds*.json")):
        merged.update(json.loads(path.read_text()))
    return merged


THRESHOLDS = load_thresholds()


def check_at_most(group: str, metric: str, measured: float, case: str) -> None:
    allowed = THRESHOLDS[group][metric]
    assert measured <= allowed, (
        f"[{group}/{case}] {metric}: measured {measured:.3e} > allowed {allowed:.3e}; "
        f'if this is expected, set "{group}": {{"{metric}": {measured:.1e}}} in tests/parity/thresholds.json'
    )


def check_at_least(group: str, metric: str, measured: float, case: str) -> None:
    allowed = THRESHOLDS[group][metric]
    assert measured >= allowed or math.isinf(measured), (
        f"[{group}/{case}] {metric}: measured {measured:.2f} < allowed {allowed:.2f}"
    )
