"""How a sampling step runs its guidance passes.

A denoise loop names the passes of a step as groups of kinds, each group one transformer call whose batch
holds its kinds in order (LTX-2: the CFG pair (UNCOND, COND) batched, then PERTURBED, then ISOLATED;
Qwen-Image and FLUX.2: COND, then UNCOND, each alone), and gives `run(kinds)`, which makes that call for
any group of kinds (a pair split apart runs each kind alone). `run_passes` returns each kind's outputs.

With one process the groups run in order, as given. A loop feature that is a `PassRunner` (CFG-parallel,
parallel/loop.py) may instead run some of them here and receive the others from other processes; either
way every process ends the step with every kind's outputs, and the loop combines them as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

from ditto.runtime.contract import LoopState, PassKind

Outputs = tuple[torch.Tensor, ...]
RunKinds = Callable[[tuple[PassKind, ...]], Outputs]


@runtime_checkable
class PassRunner(Protocol):
    """A loop feature that decides where a step's passes run."""

    def run_passes(
        self, groups: Sequence[tuple[PassKind, ...]], run: RunKinds
    ) -> dict[PassKind, Outputs]: ...


def run_passes(
    loop: LoopState, groups: Sequence[tuple[PassKind, ...]], run: RunKinds
) -> dict[PassKind, Outputs]:
    """Each kind's outputs of one step: through the loop's PassRunner feature if it has one, else locally."""
    for feature in loop.features:
        if isinstance(feature, PassRunner):
            return feature.run_passes(groups, run)
    return run_locally(groups, run)


def run_locally(groups: Sequence[tuple[PassKind, ...]], run: RunKinds) -> dict[PassKind, Outputs]:
    results: dict[PassKind, Outputs] = {}
    for kinds in groups:
        results.update(by_kind(kinds, run(kinds)))
    return results


def by_kind(kinds: tuple[PassKind, ...], outputs: Outputs) -> dict[PassKind, Outputs]:
    """A batched call's outputs cut into each kind's rows (the kinds' samples are contiguous, in order)."""
    if len(kinds) == 1:
        return {kinds[0]: tuple(outputs)}
    chunks = [output.chunk(len(kinds)) for output in outputs]
    return {kind: tuple(chunk[i] for chunk in chunks) for i, kind in enumerate(kinds)}
