"""The layout of one forward's token segments over a sequence-parallel group, from a model's declaration
(parallel/plan.py): it shards the block loop's streams and the per-token pass inputs, gathers the streams
back, and gives each attention call its split (parallel/ulysses.py).

A stream's tokens are shared out in rank order, the first `length % n` ranks holding one more (no padding,
see comm.py). A segment that is kept whole (LTX-2's audio by choice, any segment shorter than the group) is
on every rank in full, and every rank computes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

import torch

from ditto.parallel.comm import Group, even_sizes, gather_uneven
from ditto.parallel.plan import Segments, SequencePlan, Tokens
from ditto.parallel.ulysses import AttentionSplit, Segment

Streams = tuple[torch.Tensor, ...]


class SequenceLayout:
    """How one forward's segments lie over `group`; made once per sampling loop and stream shapes."""

    def __init__(self, group: Group, plan: SequencePlan, streams: Streams, whole: Collection[str]) -> None:
        self.group, self.plan = group, plan
        self.segments: dict[str, Segment] = {}
        for names, stream in zip(plan.streams, streams, strict=True):
            if len(names) != 1:
                raise ValueError(f"a stream entering the block loop is one segment, not {names}")
            length = stream.shape[1]
            sharded = names[0] not in whole and length >= group.size
            self.segments[names[0]] = Segment(
                names[0], length, even_sizes(length, group.size) if sharded else None
            )
        self._splits = {
            (q, kv): AttentionSplit(group, tuple(map(self.segment, q)), tuple(map(self.segment, kv)))
            for q, kv in plan.attentions
        }

    def segment(self, name: str) -> Segment:
        """A declared segment, or one it does not know (LTX-2's text): whole on every rank."""
        return self.segments.get(name) or Segment(name, -1)

    def attention(self, q: Segments, kv: Segments) -> AttentionSplit:
        split = self._splits.get((q, kv))
        if split is None:
            raise ValueError(f"attention of {q} over {kv} is not among the plan's declared attentions")
        return split

    def shard(self, value: torch.Tensor, segments: Segments, axis: int) -> torch.Tensor:
        """This rank's tokens of `value`, whose `axis` runs over the whole `segments` (size 1: shared)."""
        parts = [self.segment(name) for name in segments]
        total = sum(part.length for part in parts)
        if value.shape[axis] == 1:
            return value
        if value.shape[axis] != total:
            raise ValueError(f"axis {axis} of {tuple(value.shape)} is not the {total} tokens of {segments}")
        pieces, start, index = [], 0, self.group.index
        for part in parts:
            pieces.append(value.narrow(axis, start + part.offset(index), part.local(index)))
            start += part.length
        # A fresh dense tensor, with the strides the blocks' outputs have: a compiled block guards on strides
        # (even of a size-1 batch axis, which .contiguous() leaves as the view's), so a view into the first
        # block would compile every pass twice (once for the view, once for the later blocks' tensors).
        if len(pieces) == 1:
            return pieces[0].clone(memory_format=torch.contiguous_format)
        return torch.cat(pieces, dim=axis)

    def gather(self, value: torch.Tensor, segments: Segments, axis: int) -> torch.Tensor:
        """The whole `segments` from every rank's shard of `axis`."""
        parts = [self.segment(name) for name in segments]
        local = value.split([part.local(self.group.index) for part in parts], dim=axis)
        whole = [
            gather_uneven(piece, part.sizes, axis, self.group) if part.sharded else piece
            for part, piece in zip(parts, local, strict=True)
        ]
        return whole[0] if len(whole) == 1 else torch.cat(whole, dim=axis)

    def shard_streams(self, streams: Streams) -> Streams:
        return tuple(
            self.shard(stream, names, 1) for names, stream in zip(self.plan.streams, streams, strict=True)
        )

    def gather_streams(self, streams: Streams, blocks: int) -> Streams:
        """The streams as the plan's `blocks` blocks leave them (after its transitions), whole again."""
        layout = self.plan.streams_after(blocks)
        return tuple(self.gather(stream, names, 1) for names, stream in zip(layout, streams, strict=True))

    def shard_inputs(self, inputs: Any) -> Any:
        """The pass inputs with their per-token fields sharded and this layout in `plan.layout_field`."""
        changes = {
            name: self._shard_value(getattr(inputs, name), decl) for name, decl in self.plan.inputs.items()
        }
        return dataclasses.replace(inputs, **changes, **{self.plan.layout_field: self})

    def _shard_value(self, value: Any, decl: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(decl, tuple) and not isinstance(decl, Tokens):
            return _rebuild(value, [self._shard_value(v, d) for v, d in zip(value, decl, strict=True)])
        if isinstance(value, tuple):
            return _rebuild(value, [self._shard_value(v, decl) for v in value])
        return self.shard(value, decl.segments, decl.axis)


def _rebuild(value: tuple, items: list[Any]) -> tuple:
    """A tuple of the same kind (NamedTuples keep their type)."""
    return type(value)._make(items) if hasattr(value, "_make") else tuple(items)
