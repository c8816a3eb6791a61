"""This process's groups: how the ranks split into CFG groups and sequence-parallel groups.

Ranks are numbered cfg-major: with d groups of guidance passes, sequence group g holds the contiguous ranks
[g*s, (g+1)*s) (s = world / d: contiguous ranks are the closest GPUs) and CFG group u the ranks
{u, s+u, 2s+u, ...}, the ranks at the same place of each sequence group, which exchange their passes'
results. Every d a loop may choose (each divisor of `cfg`) has its groups made up front, since every rank
must create every group in the same order.

Besides these, two gloo groups carry host-side messages: `host` (per-step flags, shapes, with the
configured timeout) and `control` (the leader's next call, which may come after hours of idling: a long
timeout; a vanished leader still fails it at once, its sockets close).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import torch.distributed as dist

from ditto.parallel.comm import Group
from ditto.parallel.config import ParallelConfig, divisors

IDLE_TIMEOUT = datetime.timedelta(days=365)


@dataclass(frozen=True)
class LoopSplit:
    """One sampling loop's split: `cfg` (None: every rank runs every pass) and `sequence` (None: no
    sequence parallelism) are this rank's groups."""

    degree: int  # how many groups the passes are split over
    cfg: Group | None
    sequence: Group | None

    @property
    def sequence_size(self) -> int:
        return 1 if self.sequence is None else self.sequence.size


class Mesh:
    def __init__(self, config: ParallelConfig) -> None:
        self.config = config
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        if self.size != config.world_size:
            raise ValueError(f"the process group has {self.size} ranks, the config {config.world_size}")
        timeout = datetime.timedelta(seconds=config.timeout_s)
        everyone = tuple(range(self.size))
        self.world = Group(dist.group.WORLD, everyone, self.rank)
        self.host = Group(dist.new_group(everyone, timeout=timeout, backend="gloo"), everyone, self.rank)
        self.control = Group(
            dist.new_group(everyone, timeout=IDLE_TIMEOUT, backend="gloo"), everyone, self.rank
        )
        self.splits = {degree: self._make(degree) for degree in divisors(config.cfg)}

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def split(self, passes: int) -> LoopSplit:
        """The split of a loop whose steps run `passes` guidance passes: the largest CFG degree that gives
        every CFG group a pass, the rest of the ranks sequence-parallel."""
        degree = max(d for d in self.splits if d <= max(passes, 1))
        return self.splits[degree]

    def _make(self, degree: int) -> LoopSplit:
        span = self.size // degree
        sequence = cfg = None
        for g in range(degree):
            sequence = self._group(tuple(range(g * span, (g + 1) * span))) or sequence
        for u in range(span):
            cfg = self._group(tuple(range(u, self.size, span))) or cfg
        return LoopSplit(degree, cfg, sequence)

    def _group(self, ranks: tuple[int, ...]) -> Group | None:
        """This rank's Group if it is in `ranks` (every rank calls this for every group, in one order)."""
        if len(ranks) == 1:
            return None
        # The configured timeout here too: without it a sub-group's collectives wait torch's default (30 min
        # on gloo, 10 on NCCL) when a rank of the group fails, not `timeout_s` as the world's do.
        timeout = datetime.timedelta(seconds=self.config.timeout_s)
        pg = dist.group.WORLD if len(ranks) == self.size else dist.new_group(list(ranks), timeout=timeout)
        return Group(pg, ranks, ranks.index(self.rank)) if self.rank in ranks else None
