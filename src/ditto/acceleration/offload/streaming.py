"""Block streaming: the blocks that do not fit on the device are loaded one at a time while the others run.

Before a streamed block runs, the compute stream waits for its copy (issued while the blocks before it ran)
and the copy of the next streamed block is issued on the side stream; after it runs, its device copy is
dropped. So at most two streamed blocks are on the device at once (the one running, the one arriving), and
with the resident blocks spread between the streamed ones (`spread_order`) each copy overlaps the compute of
the blocks before it. Within a pass the next block is known from the plan's order, so nothing is guessed.

Two users, one schedule:
- ditto's own transformers: `StreamBlocks`, a `LoopFeature` (runtime.contract), the innermost one: a step
  cache hands it each range it computes, so a range the cache skips moves no weights.
- a transformers text encoder's decoder layers (Gemma-3, Qwen): `LayerHooks`, a forward pre-hook and hook per
  layer (not ditto's block loop; the layers' compiled parts are their children's forwards, so the hooks stay
  outside any graph).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from torch import nn

from ditto.acceleration.offload.memory import module_tensors
from ditto.acceleration.offload.mover import Mover
from ditto.runtime.contract import BlockCall, BlockPlan, PassContext, RunBlocks, Streams


def spread_order(count: int) -> list[int]:
    """Indices 0..count-1 in an order that spreads any prefix evenly over the range (the van der Corput
    sequence: 0, 1/2, 1/4, 3/4, 1/8, ... of `count`): the blocks kept resident are taken in this order, so
    the streamed ones fall between resident ones."""
    order, seen, step = [], set(), 0
    while len(order) < count:
        fraction, bit, rest = 0.0, 0.5, step
        while rest:
            fraction += bit * (rest & 1)
            rest, bit = rest >> 1, bit / 2
        index = int(fraction * count)
        if index not in seen:
            seen.add(index)
            order.append(index)
        step += 1
    return order


class BlockSchedule:
    """One pass's moves over `modules` (in run order): the ones with tensors off the device stream.

    Prefetches stay inside the range being run (`begin(start, stop)`): a step cache that runs [0, 2) and then
    [5, n) never has blocks 2-4 copied, not even speculatively."""

    def __init__(self, mover: Mover, modules: Sequence[nn.Module]) -> None:
        self.mover = mover
        self.tensors = [module_tensors([m]) for m in modules]
        self.index = {id(m): i for i, m in enumerate(modules)}
        self.streamed = [i for i, ts in enumerate(self.tensors) if not all(mover.is_loaded(t) for t in ts)]
        self.is_streamed = set(self.streamed)
        self.stop = len(modules)
        self.arriving: int | None = None

    def begin(self, start: int, stop: int) -> None:
        """Blocks [start, stop) are about to run: issue the first streamed one's copy."""
        self.stop = stop
        if self.arriving is None:
            self._prefetch(self._next_streamed(start))

    def before(self, module: nn.Module) -> None:
        index = self.index[id(module)]
        if index in self.is_streamed:
            if self.arriving != index:
                self.drop_arriving()
                self.mover.load(self.tensors[index], wait=True)
            else:
                self.mover.wait(self.tensors[index])
                self.arriving = None
        if self.arriving is None:
            self._prefetch(self._next_streamed(index + 1))

    def after(self, module: nn.Module) -> None:
        index = self.index[id(module)]
        if index in self.is_streamed:
            self.mover.evict(self.tensors[index])

    def drop_arriving(self) -> None:
        """Drop a copy issued for a block that did not run next."""
        if self.arriving is not None:
            self.mover.evict(self.tensors[self.arriving])
            self.arriving = None

    def _next_streamed(self, start: int) -> int | None:
        position = bisect.bisect_left(self.streamed, start)
        if position < len(self.streamed) and self.streamed[position] < self.stop:
            return self.streamed[position]
        return None

    def _prefetch(self, index: int | None) -> None:
        if index is not None:
            self.mover.load(self.tensors[index], wait=False)
            self.arriving = index


@dataclass(frozen=True)
class StreamedPlan(BlockPlan):
    """The plan the features inside block offload see: each range it runs tells the schedule first."""

    schedule: BlockSchedule | None = None

    def run(self, streams: Streams, start: int = 0, stop: int | None = None) -> Streams:
        stop = len(self.calls) if stop is None else stop
        self.schedule.begin(start, stop)
        try:
            return super().run(streams, start, stop)
        finally:
            self.schedule.drop_arriving()


class StreamBlocks:
    """The transformer's block offload for one sampling loop: a `LoopFeature` wrapping the block calls."""

    replayable = False  # it moves weights in Python per call: no CUDA-graph recording of its passes
    # A resumed plan (LTX-2's STG pass from its first perturbed block) is a list of blocks like any other:
    # it gets its own schedule, keyed by its modules.
    handles_resumed_plans = True

    def __init__(self, mover: Mover) -> None:
        self.mover = mover
        self.schedules: dict[tuple[int, ...], BlockSchedule] = {}

    def run_blocks(self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks) -> Streams:
        schedule = self._schedule(plan)
        calls = [BlockCall(call.module, partial(_run, schedule, call)) for call in plan.calls]
        return inner(StreamedPlan(calls, plan.transitions, first=plan.first, schedule=schedule), streams, ctx)

    def _schedule(self, plan: BlockPlan) -> BlockSchedule:
        """One schedule per list of blocks, made at the loop's first pass (the blocks and what is resident
        do not change within a loop: LoRAs are attached between loops)."""
        key = tuple(id(call.module) for call in plan.calls)
        if key not in self.schedules:
            self.schedules[key] = BlockSchedule(self.mover, [call.module for call in plan.calls])
        return self.schedules[key]


def _run(schedule: BlockSchedule, call: BlockCall, streams: Streams) -> Streams:
    schedule.before(call.module)
    out = call.run(streams)
    schedule.after(call.module)
    return out


class LayerHooks:
    """Streams a transformers model's decoder layers through forward hooks on each layer (installed once)."""

    def __init__(self, mover: Mover, layers: Sequence[nn.Module]) -> None:
        self.mover = mover
        self.layers = list(layers)
        self.schedule: BlockSchedule | None = None
        self.handles = []
        for layer in self.layers:
            self.handles.append(layer.register_forward_pre_hook(self._before))
            self.handles.append(layer.register_forward_hook(self._after))

    def _before(self, layer: nn.Module, args: tuple) -> None:
        if layer is self.layers[0]:  # a new forward: what is resident may have changed since the last one
            self.schedule = BlockSchedule(self.mover, self.layers)
            self.schedule.begin(0, len(self.layers))
        if self.schedule is not None:
            self.schedule.before(layer)

    def _after(self, layer: nn.Module, args: tuple, output: object) -> None:
        if self.schedule is not None:
            self.schedule.after(layer)
            if layer is self.layers[-1]:
                self.schedule.drop_arriving()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
