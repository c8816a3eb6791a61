"""Helpers shared by the tiny checkpoint builders."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def fill_random(module: torch.nn.Module, seed: int, zero_std: float = 0.05) -> torch.nn.Module:
    """Make a freshly built module deterministic and non-degenerate.

    Parameters the library initialises to zero (gates, final projections, scale-shift tables) would hide
    bugs in a parity test, since any code path that multiplies by them looks right. They get small normal
    noise; everything else keeps the library's own init, drawn from a fixed seed.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(module.named_parameters()):
            if param.is_floating_point() and torch.count_nonzero(param) == 0:
                param.copy_(torch.randn(param.shape, generator=generator) * zero_std)
    return module


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
