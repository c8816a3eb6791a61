"""Fixtures for the official-code parity tests: tiny official-layout checkpoints and the thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import official_shims
import pytest
import torch

THRESHOLDS = json.loads((Path(__file__).parent / "thresholds_ltx_official.json").read_text())


def check(case: str, measured: float) -> None:
    """Compare with the JSON threshold; on failure print what to paste."""
    allowed = THRESHOLDS[f"ltx_official/{case}"]["max_abs"]
    print(f"ltx_official/{case}: measured max_abs={measured:.3e} (allowed {allowed:.1e})")
    assert measured <= allowed, f"ltx_official/{case}: measured max_abs={measured:.3e}, allowed {allowed:.1e}"


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(scope="session")
def official_checkpoints(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    official_shims.install()
    from ditto.tiny.ltx_official import build_tiny_official

    folder = tmp_path_factory.mktemp("ltx-official")
    return {version: build_tiny_official(folder, version) for version in ("2.0", "2.3")}
