"""The one block loop every model runs, and the protocol through which features wrap it.

A model's `run_blocks(streams, inputs, ctx)` turns its blocks into a `BlockPlan` (one `BlockCall` per
block, plus the transitions between kinds of block) and hands it to `run_block_loop`. The loop features of
the pass's `LoopState` (step cache, block offload, sequence parallelism) each see the plan and decide how to
run it: all of it, a range of it, or a cached residual instead of a range. No feature patches a model, and
none guesses which guidance pass it is in: `ctx.kinds` says.

Streams are the hidden-state tensors the blocks carry: (video, audio) for LTX-2, (image, text) for Qwen-Image
and FLUX.2's double-stream blocks, then (joined,) for FLUX.2's single-stream blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from ditto.runtime.passes import PassContext

Streams = tuple[torch.Tensor, ...]
RunBlocks = Callable[["BlockPlan", Streams, "PassContext | None"], Streams]


@dataclass(frozen=True)
class BlockCall:
    """One block of the plan: its module (what offload moves, what a profile names) and how to call it on the
    streams, with this forward's inputs already bound."""

    module: nn.Module
    run: Callable[[Streams], Streams]


@dataclass(frozen=True)
class BlockPlan:
    """The blocks of one forward, in order, and the stream transitions between them.

    transitions[i] is applied to the streams just before block i runs (FLUX.2: join text and image before
    the first single-stream block); it moves no weights and computes nothing a cache would skip.
    """

    calls: Sequence[BlockCall]
    transitions: Mapping[int, Callable[[Streams], Streams]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.calls)

    def run(self, streams: Streams, start: int = 0, stop: int | None = None) -> Streams:
        """Run blocks [start, stop) with the transitions on the way."""
        stop = len(self.calls) if stop is None else stop
        for index in range(start, stop):
            streams = self.enter(index, streams)
            streams = self.calls[index].run(streams)
        return streams

    def enter(self, index: int, streams: Streams) -> Streams:
        """The streams as block `index` takes them (its transition, if any, applied)."""
        transition = self.transitions.get(index)
        return streams if transition is None else transition(streams)

    def convert(self, streams: Streams, start: int, stop: int) -> Streams:
        """The transitions of blocks [start, stop) alone, no block run: streams as they would enter block
        `start` -> the form in which block stop-1 leaves them. A cache that skips [start, stop) adds its
        residual to this."""
        for index in range(start, stop):
            streams = self.enter(index, streams)
        return streams


class LoopFeature(Protocol):
    """Something that wraps the block loop for one sampling loop of one request.

    `run_blocks` runs `plan` on `streams` for the pass `ctx`, calling `inner` (the rest of the chain:
    features inside this one, then the plain loop) for whatever it does not handle itself.
    """

    def run_blocks(
        self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks
    ) -> Streams: ...


def run_plain(plan: BlockPlan, streams: Streams, ctx: PassContext | None) -> Streams:
    return plan.run(streams)


def run_block_loop(plan: BlockPlan, streams: Streams, ctx: PassContext | None) -> Streams:
    """Run the plan through the loop's features (outermost first), or plainly without a context."""
    if ctx is None or not ctx.loop.features:
        return plan.run(streams)
    return _chain(list(ctx.loop.features))(plan, streams, ctx)


def _chain(features: list[LoopFeature]) -> RunBlocks:
    if not features:
        return run_plain
    outer, inner = features[0], _chain(features[1:])
    return lambda plan, streams, ctx: outer.run_blocks(plan, streams, ctx, inner)
