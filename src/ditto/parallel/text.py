"""Prompt sets over the ranks (`ParallelConfig(text="split")`): set i (LTX-2: 0 the prompts, 1 the negative
prompts) is encoded on rank i % N alone, then broadcast from it to every rank.

Whether it pays is a GPU question: one rank encoding both sets in one batch (the default, "replicate")
runs Gemma once on two prompts; "split" runs it on one prompt per rank at the same time and then moves
the embeddings (2 x 1024 x 4096 values for LTX-2's video side) to the others. The benchmark
(benchmarks/gpu_parallel.py, `--text`) compares the encode_text stage both ways on the GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ditto.parallel.mesh import Mesh

Item = TypeVar("Item")
Encoded = tuple[torch.Tensor, ...]


def encode_over_ranks(
    sets: Sequence[Item], encode: Callable[[list[Item]], list[Encoded]], mesh: Mesh, device: torch.device
) -> list[Encoded]:
    """`encode(sets)` with each set encoded on its own rank only; every rank gets every set's tensors."""
    owners = [index % mesh.size for index in range(len(sets))]
    mine = [index for index, owner in enumerate(owners) if owner == mesh.rank]
    encoded = dict(zip(mine, encode([sets[index] for index in mine]), strict=True)) if mine else {}
    return [_from(owner, encoded.get(index), mesh, device) for index, owner in enumerate(owners)]


def _from(owner: int, tensors: Encoded | None, mesh: Mesh, device: torch.device) -> Encoded:
    """The owner's tensors on every rank: their shapes and dtypes first (gloo), then the values."""
    header: list[Any] = [None if tensors is None else [(t.shape, t.dtype) for t in tensors]]
    dist.broadcast_object_list(header, src=owner, group=mesh.host.pg)
    if tensors is None:
        tensors = tuple(torch.empty(shape, dtype=dtype, device=device) for shape, dtype in header[0])
    tensors = tuple(t.contiguous() for t in tensors)
    for tensor in tensors:
        dist.broadcast(tensor, src=owner, group=mesh.world.pg)
    return tensors
