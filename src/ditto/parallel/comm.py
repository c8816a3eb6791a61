"""The collectives the parallel code uses, all torch.distributed's own (NCCL on GPUs, gloo on CPUs).

Inside a transformer block (Ulysses' all-to-all) the functional collectives are used: torch.compile traces
them into a block's graph (regional compile is fullgraph) and CUDA graphs record them. Around the block loop
and between passes (gathers of whole streams and of guidance passes) they are the same calls, so one set of
helpers serves both.

Uneven shards are sent as they are: all-to-all takes per-rank split sizes, so no token is padded and no
attention mask is needed for the padding (the fast unmasked kernels stay usable). Gathers of uneven
shards pad each shard to the longest one and drop the padding after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as fc

_ALL_GATHER = getattr(fc, "all_gather_single", None) or fc.all_gather_tensor  # renamed in torch 2.12


@dataclass(frozen=True, eq=False)
class Group:
    """A process group and this rank's place in it (index = position in `ranks`)."""

    pg: dist.ProcessGroup
    ranks: tuple[int, ...]
    index: int

    @property
    def size(self) -> int:
        return len(self.ranks)


def all_to_all(x: torch.Tensor, send: Sequence[int], receive: Sequence[int], group: Group) -> torch.Tensor:
    """Rows (dim 0) of `x` split by `send` go to the ranks in order; rows from each rank, `receive` of them,
    come back concatenated in rank order."""
    out = fc.all_to_all_single(x.contiguous(), list(receive), list(send), group.pg)
    return fc.wait_tensor(out)


def all_gather(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Every rank's `x` (equal shapes) stacked on a new dim 0, in rank order."""
    return fc.wait_tensor(_ALL_GATHER(x.contiguous().unsqueeze(0), 0, group.pg))


def gather_uneven(x: torch.Tensor, sizes: Sequence[int], axis: int, group: Group) -> torch.Tensor:
    """Every rank's shard of `axis` (rank r holds sizes[r] entries) joined in rank order."""
    longest = max(sizes)
    pad = longest - x.shape[axis]
    if pad:
        shape = list(x.shape)
        shape[axis] = pad
        x = torch.cat([x, x.new_zeros(shape)], dim=axis)
    stacked = all_gather(x, group)  # [ranks, ..., longest, ...]
    parts = [stacked[rank].narrow(axis, 0, size) for rank, size in enumerate(sizes)]
    return torch.cat(parts, dim=axis)


def even_sizes(length: int, parts: int) -> tuple[int, ...]:
    """`length` entries over `parts` ranks, in order: the first `length % parts` ranks hold one more."""
    base, extra = divmod(length, parts)
    return tuple(base + (rank < extra) for rank in range(parts))
