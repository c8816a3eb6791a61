"""CFG-parallel: a step's guidance passes over the groups of a CFG split, their results exchanged.

The kinds of the step, in the loop's order (LTX-2: UNCOND, COND, PERTURBED, ISOLATED with the CFG pair
batched; COND, PERTURBED, UNCOND, ISOLATED when an STG pass shares the conditional pass's prefix), are dealt
out in contiguous runs to the d CFG groups, the first `passes % d` groups taking one more. Contiguous runs
keep the STG pass with the conditional pass wherever the first group runs two passes or more, so it can
resume from that pass's tapped streams, which never leave the group (parallel/loop.py). A group keeps the loop's
batching where it holds a whole batched group (LTX-2's CFG pair stays one batch of two when both halves are
its own), and otherwise runs each kind alone. Then each tensor position of the outputs is all-gathered over
the CFG group (one collective per position: LTX-2's video and audio), so every rank holds every kind's
outputs, bit for bit those of the rank that computed it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ditto.parallel.comm import Group, all_gather
from ditto.runtime.contract import PassKind
from ditto.runtime.passes import Outputs, RunKinds, run_locally

Groups = Sequence[tuple[PassKind, ...]]


def deal(kinds: Sequence[PassKind], parts: int) -> list[tuple[PassKind, ...]]:
    """`kinds` in contiguous runs over `parts` groups, the first ones one longer when it does not divide."""
    base, extra = divmod(len(kinds), parts)
    runs, start = [], 0
    for part in range(parts):
        size = base + (part < extra)
        runs.append(tuple(kinds[start : start + size]))
        start += size
    return runs


def own_groups(groups: Groups, mine: tuple[PassKind, ...]) -> list[tuple[PassKind, ...]]:
    """The loop's groups restricted to `mine`: a group wholly mine stays batched, a part of one runs alone."""
    out: list[tuple[PassKind, ...]] = []
    for kinds in groups:
        part = tuple(kind for kind in kinds if kind in mine)
        out.extend([part] if part == kinds else [(kind,) for kind in part])
    return out


def run_split(groups: Groups, run: RunKinds, group: Group) -> dict[PassKind, Outputs]:
    """Run this rank's share of the step's passes, then exchange: every kind's outputs on every rank."""
    owners = deal([kind for kinds in groups for kind in kinds], group.size)
    mine = run_locally(own_groups(groups, owners[group.index]), run)
    return exchange(mine, owners, group)


def exchange(
    mine: dict[PassKind, Outputs], owners: list[tuple[PassKind, ...]], group: Group
) -> dict[PassKind, Outputs]:
    template = next(iter(mine.values()))
    longest = max(len(kinds) for kinds in owners)
    gathered = []
    for position, like in enumerate(template):
        rows = [mine[kind][position].reshape(-1) for kind in owners[group.index]]
        rows += [like.new_zeros(like.numel())] * (longest - len(rows))
        gathered.append(all_gather(torch.stack(rows), group))  # [ranks, longest, numel]
    results: dict[PassKind, Outputs] = {}
    for rank, kinds in enumerate(owners):
        for row, kind in enumerate(kinds):
            results[kind] = tuple(
                mine[kind][p] if rank == group.index else gathered[p][rank, row].view(like.shape)
                for p, like in enumerate(template)
            )
    return results
