"""Parity thresholds are data: tests/parity/thresholds*.json. A check prints measured vs allowed (shown with
-s or on a failure) and a failing one says which file to edit.

A metric is either a plain bound (the FLUX.2 and Qwen-Image groups) or a measured bound:
    {"measured": 3.8e-05, "margin": 3, "why": "..."}
where `measured` is the largest value the cases of that metric gave when it was set, `margin` (1..3) the
headroom and `why` what the difference is made of. The bound is measured x margin for a maximum (errors),
measured - 10 log10(margin) dB for a minimum (PSNR: the same margin on the squared error). Every LTX-2
metric is measured (tests/parity/test_thresholds_format.py).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

PARITY = Path(__file__).resolve().parents[1] / "parity"
MAX_MARGIN = 3.0


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


def allowed(group: str, metric: str, minimum: bool = False) -> float:
    """The bound of `metric` in `group`: a plain number, or measured x margin (measured - margin in dB for
    a minimum)."""
    entry = THRESHOLDS[group][metric]
    if not isinstance(entry, dict):
        return entry
    if minimum:
        return entry["measured"] - 10 * math.log10(entry["margin"])
    return entry["measured"] * entry["margin"]


def _hint(group: str, metric: str, measured: float) -> str:
    entry = THRESHOLDS[group][metric]
    if isinstance(entry, dict):
        return f'if this is expected, set "measured": {measured:.2e} (and say why) for "{group}"/"{metric}"'
    return f'if this is expected, set "{group}": {{"{metric}": {measured:.1e}}}'


def check_at_most(group: str, metric: str, measured: float, case: str) -> None:
    bound = allowed(group, metric)
    print(f"[{group}/{case}] {metric}: measured {measured:.3e} (allowed <= {bound:.3e})", file=sys.stderr)
    assert measured <= bound, (
        f"[{group}/{case}] {metric}: measured {measured:.3e} > allowed {bound:.3e}; "
        f"{_hint(group, metric, measured)} in tests/parity/{FILES[group]}"
    )


def check_at_least(group: str, metric: str, measured: float, case: str) -> None:
    bound = allowed(group, metric, minimum=True)
    print(f"[{group}/{case}] {metric}: measured {measured:.2f} (allowed >= {bound:.2f})", file=sys.stderr)
    assert measured >= bound or math.isinf(measured), (
        f"[{group}/{case}] {metric}: measured {measured:.2f} < allowed {bound:.2f}; "
        f"{_hint(group, metric, measured)} in tests/parity/{FILES[group]}"
    )


def check_official(case: str, measured: float) -> None:
    """ditto vs the official ltx-core / ltx-pipelines: group "ltx_official/<case>", metric max_abs."""
    check_at_most(f"ltx_official/{case}", "max_abs", measured, case)
