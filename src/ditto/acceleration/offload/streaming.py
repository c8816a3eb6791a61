"""Block streaming: the blocks that do not fit on the device are loaded one at a time while the others run.

Before a streamed block runs, the compute stream waits for its copy (issued while the blocks before it ran)
and the copy of the next streamed block is issued on the side stream; after it runs, its device copy is
dropped. So at most two streamed blocks are on the device at once (the one running, the one arriving), and
with the resident blocks spread between the streamed ones (`spread_order`) each copy overlaps the compute of
the blocks before it. Within a pass the next block is known from the plan's order, so nothing is guessed.

Two users, one schedule:
- ditto's own transformers: `StreamBlocks`, a `LoopFeature` (runtime.contract). It hands the features inside
  it (a step cache) a plan whose calls load their own block, so a range the cache skips moves no weights.
- a transformers text encoder's decoder layers (Gemma-3, Qwen): `LayerHooks`, a forward pre-hook and hook per
  layer (not ditto's block loop; the layers' compiled parts are their children's forwards, so the hooks stay
  outside any graph).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import nn

from ditto.acceleration.offload.memory import module_tensors
from ditto.acceleration.offload.mover import Mover
from ditto.runtime.contract import BlockCall, BlockPlan, PassContext, RunBlocks, Streams


def spread_order(count: int) -> list[int]:
    """Indices 0..count-1 in an order that spreads any prefix evenly over the range (0, 1/2, 1/4, 3/4, ...):
    the blocks kept resident are taken in this order, so the streamed ones fall between resident ones."""
    order, seen, parts = [], set(), 1
    while len(order) < count:
        for k in range(parts):
            index = (2 * k + 1) * count // (2 * parts) if parts > 1 else 0
            if index not in seen:
                seen.add(index)
                order.append(index)
        parts *= 2
    return order


class BlockSchedule:
    """One pass's moves over `modules` (in run order): the ones with tensors off the device stream."""

    def __init__(self, mover: Mover, modules: Sequence[nn.Module]) -> None:
        self.mover = mover
        self.tensors = {id(m): module_tensors([m]) for m in modules}
        self.streamed = {id(m) for m in modules if not all(mover.is_loaded(t) for t in self.tensors[id(m)])}
        # The next streamed module after each module (None after the last one).
        self.next: dict[int, nn.Module | None] = {}
        upcoming: nn.Module | None = None
        for module in reversed(modules):
            self.next[id(module)] = upcoming
            if id(module) in self.streamed:
                upcoming = module
        self.first = upcoming
        self.arriving: nn.Module | None = None

    def before(self, module: nn.Module) -> None:
        key = id(module)
        if key in self.streamed:
            if self.arriving is not module:
                self.drop_arriving()
                self.mover.load(self.tensors[key], wait=True)
            else:
                self.mover.wait(self.tensors[key])
                self.arriving = None
        if self.arriving is None:
            self._prefetch(self.next.get(key))

    def after(self, module: nn.Module) -> None:
        if id(module) in self.streamed:
            self.mover.evict(self.tensors[id(module)])

    def start(self) -> None:
        """Issue the first streamed block's copy before the pass's first block runs."""
        if self.arriving is None:
            self._prefetch(self.first)

    def drop_arriving(self) -> None:
        """Drop a copy issued for a block that did not run next (a step cache skipped it)."""
        if self.arriving is not None:
            self.mover.evict(self.tensors[id(self.arriving)])
            self.arriving = None

    def _prefetch(self, module: nn.Module | None) -> None:
        if module is not None:
            self.mover.load(self.tensors[id(module)], wait=False)
            self.arriving = module


class StreamBlocks:
    """The transformer's block offload for one sampling loop: a `LoopFeature` wrapping the block calls."""

    replayable = False  # it moves weights in Python per call: no CUDA-graph recording of its passes

    def __init__(self, mover: Mover) -> None:
        self.mover = mover
        self.schedules: dict[tuple[int, ...], BlockSchedule] = {}

    def run_blocks(self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks) -> Streams:
        schedule = self._schedule(plan)
        calls = [BlockCall(call.module, partial(_run, schedule, call)) for call in plan.calls]
        schedule.start()
        try:
            return inner(BlockPlan(calls, plan.transitions), streams, ctx)
        finally:
            schedule.drop_arriving()

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
            self.schedule.start()
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
