"""Parity thresholds are data: tests/parity/thresholds*.json. A check prints measured vs allowed (shown with
-s or on a failure) and a failing one says which file to edit."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

PARITY = Path(__file__).resolve().parents[1] / "parity"


def load_thresholds() -> tuple[dict, dict[str, str]]:
    """Every group of every thresholds*.json, and the file each group comes from."""
    merged: dict = {}
    files: dict[str, str] = {}
    for path in sorted(PARITY.glob("thresholds*.json")):
        groups = json.loads(path.read_text())
        merged.update(groups)
        files.update(dict.fromkeys(groups, path.name))
    return merged, files


THRESHOLDS, FILES = load_thresholds()


def check_at_most(group: str, metric: str, measured: float, case: str) -> None:
    allowed = THRESHOLDS[group][metric]
    print(f"[{group}/{case}] {metric}: measured {measured:.3e} (allowed <= {allowed:.3e})", file=sys.stderr)
    assert measured <= allowed, (
        f"[{group}/{case}] {metric}: measured {measured:.3e} > allowed {allowed:.3e}; "
        f'if this is expected, set "{group}": {{"{metric}": {measured:.1e}}} in tests/parity/{FILES[group]}'
    )


def check_at_least(group: str, metric: str, measured: float, case: str) -> None:
    allowed = THRESHOLDS[group][metric]
    print(f"[{group}/{case}] {metric}: measured {measured:.2f} (allowed >= {allowed:.2f})", file=sys.stderr)
    assert measured >= allowed or math.isinf(measured), (
        f"[{group}/{case}] {metric}: measured {measured:.2f} < allowed {allowed:.2f}"
    )


def check_official(case: str, measured: float) -> None:
    """ditto vs the official ltx-core / ltx-pipelines: group "ltx_official/<case>", metric max_abs."""
    check_at_most(f"ltx_official/{case}", "max_abs", measured, case)
