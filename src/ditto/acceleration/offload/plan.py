"""The residency plan: within a device-memory budget, which components stay on the device for the engine's life,
which are brought in for the stages that run them, and how many blocks of a streamable component (a DiT's
blocks, a text encoder's layers) stay resident in each stage while the others stream.

The plan is made from the components' measured sizes and each stage's activation estimate (the family's
spec), with a reserve of `RESERVE` of the budget for what no estimate sees (allocator fragmentation, library
workspaces). Among the feasible plans it picks the one that moves the fewest bytes per request: a component
kept on the device saves its per-request load but may force more blocks to stream in every pass of a
denoising loop, which usually costs more (LTX-2's small parts move per stage at 24 GiB for this reason).
A budget no plan meets is an error naming the smallest one that works.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from ditto.acceleration.offload.memory import budget_text, format_bytes, round_up
from ditto.acceleration.offload.spec import Stage
from ditto.errors import InvalidParameter

RESERVE = (
    0.05  # of the budget: allocator fragmentation, cuBLAS/cuDNN workspaces, what the estimates leave out
)
SLOTS = 2  # streamed blocks on the device at once: the one running and the one arriving


@dataclass(frozen=True)
class Sizes:
    """A component's bytes: besides its blocks (`fixed`), and each block's."""

    fixed: int
    blocks: tuple[int, ...] = ()
    part_of: str | None = None

    @property
    def total(self) -> int:
        return self.fixed + sum(self.blocks)


@dataclass(frozen=True)
class StagePlan:
    """One stage: the components on the device, per streamable component the bytes its blocks may take
    (`room`, stream slots included) and the blocks that stay (`resident`) or stream (`streamed`)."""

    name: str
    loaded: tuple[str, ...]
    room: dict[str, int]
    resident: dict[str, tuple[int, ...]]
    streamed: dict[str, tuple[int, ...]]
    streamed_bytes: dict[str, int]  # per pass
    weights: int  # bytes of weights on the device at most (stream slots included)
    workspace: int
    passes: int


@dataclass(frozen=True)
class OffloadPlan:
    family: str
    budget: int
    mode: str  # "cpu" (weights move between host and device) or "none" (all resident, budget checked)
    always: tuple[str, ...]  # on the device for the engine's life
    stages: tuple[StagePlan, ...]
    sizes: dict[str, Sizes]
    smallest: int  # the smallest budget a plan exists for

    @property
    def reserve(self) -> int:
        return int(self.budget * RESERVE)

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)

    def moved_per_request(self) -> int:
        return transfer_cost(self.stages, self.always, self.sizes)

    def describe(self) -> str:
        from ditto.acceleration.offload.describe import describe_plan

        return describe_plan(self)


def choose_resident(blocks: Sequence[int], room: int) -> tuple[int, ...]:
    """The blocks that stay on the device within `room` bytes: taken in spread order (streamed ones fall
    between resident ones, so each copy overlaps compute) while they fit."""
    from ditto.acceleration.offload.streaming import spread_order

    kept, left = [], room
    for index in spread_order(len(blocks)):
        if blocks[index] <= left:
            kept.append(index)
            left -= blocks[index]
    return tuple(sorted(kept))


def split_blocks(blocks: Sequence[int], free: int) -> tuple[tuple[int, ...], int] | None:
    """(resident block indices, bytes used, slots included) within `free`; None when not even the slots fit."""
    if sum(blocks) <= free:
        return tuple(range(len(blocks))), sum(blocks)
    slots = SLOTS * max(blocks)
    if slots > free:
        return None
    resident = choose_resident(blocks, free - slots)
    return resident, sum(blocks[i] for i in resident) + slots


def plan_stage(stage: Stage, always: Iterable[str], sizes: dict[str, Sizes], budget: int) -> StagePlan | None:
    """The stage's residency with `always` kept on the device; None when it does not fit the budget."""
    always = tuple(always)
    loaded = tuple(dict.fromkeys((*always, *stage.components)))
    weights, streaming = 0, []
    for name in loaded:
        size = sizes[name]
        if size.part_of in loaded:
            continue  # its tensors come with the component it is part of
        fixed = size.fixed + stage.fixed_extra.get(name, 0)
        blocks = _with_extra(size.blocks, stage.block_extra.get(name))
        if name in always or not blocks:
            weights += fixed + sum(blocks)
        else:
            weights += fixed
            streaming.append((name, blocks))
    free = budget - int(budget * RESERVE) - stage.workspace - weights
    if free < 0:
        return None
    room, resident, streamed, streamed_bytes = {}, {}, {}, {}
    for position, (name, blocks) in enumerate(streaming):
        split = split_blocks(blocks, free)
        if split is None:
            return None
        kept, used = split
        last = position == len(streaming) - 1
        room[name] = free if last else used  # the last one gets whatever is left
        resident[name] = kept
        streamed[name] = tuple(i for i in range(len(blocks)) if i not in kept)
        streamed_bytes[name] = sum(blocks[i] for i in streamed[name])
        free -= used
        weights += used
    return StagePlan(
        stage.name, loaded, room, resident, streamed, streamed_bytes, weights, stage.workspace, stage.passes
    )


def _with_extra(blocks: tuple[int, ...], extra: tuple[int, ...] | None) -> tuple[int, ...]:
    if not extra:
        return blocks
    return tuple(b + e for b, e in zip(blocks, extra, strict=True))


def transfer_cost(stages: Sequence[StagePlan], always: Iterable[str], sizes: dict[str, Sizes]) -> int:
    """Bytes moved host -> device per request: each component loaded where the stage before did not have it
    (requests repeat, so the last stage precedes the first), and the streamed blocks of every pass."""
    always = set(always)
    cost, previous = 0, set(stages[-1].loaded) if stages else set()
    for stage in stages:
        for name in stage.loaded:
            if name in always or name in previous or sizes[name].part_of in stage.loaded:
                continue
            kept = stage.resident.get(name)
            blocks = sizes[name].blocks
            cost += sizes[name].fixed + (sum(blocks) if kept is None else sum(blocks[i] for i in kept))
        cost += stage.passes * sum(stage.streamed_bytes.values())
        previous = set(stage.loaded)
    return cost


def stage_floor(stage: Stage, sizes: dict[str, Sizes]) -> int:
    """The smallest budget this stage runs in: nothing kept between stages, every block streamed."""
    need = stage.workspace
    for name in stage.components:
        size = sizes[name]
        if size.part_of in stage.components:
            continue
        blocks = _with_extra(size.blocks, stage.block_extra.get(name))
        need += size.fixed + stage.fixed_extra.get(name, 0)
        need += min(sum(blocks), SLOTS * max(blocks)) if blocks else 0
    return int(need / (1 - RESERVE)) + 1


def resident_floor(stages: Sequence[Stage], sizes: dict[str, Sizes]) -> int:
    """The smallest budget that keeps every component on the device throughout."""
    weights = sum(s.total for s in sizes.values() if s.part_of is None or s.part_of not in sizes)
    extra = max((_stage_extra(stage) + stage.workspace for stage in stages), default=0)
    return int((weights + extra) / (1 - RESERVE)) + 1


def _stage_extra(stage: Stage) -> int:
    return sum(stage.fixed_extra.values()) + sum(sum(extra) for extra in stage.block_extra.values())


def plan_offload(
    family: str,
    sizes: dict[str, Sizes],
    stages: Sequence[Stage],
    budget: int,
    mode: str = "cpu",
    given: object = None,
) -> OffloadPlan:
    """The plan that moves the fewest bytes per request within `budget`, or an InvalidParameter naming the
    smallest budget that works (`given`: the budget as the user wrote it, for the error)."""
    given = format_bytes(budget) if given is None else given
    if mode == "none":
        return _resident_plan(family, sizes, stages, budget, given)
    smallest = round_up(max((stage_floor(stage, sizes) for stage in stages), default=0))
    best: tuple[int, int, tuple[str, ...], tuple[StagePlan, ...]] | None = None
    names = tuple(sizes)
    for count in range(len(names), -1, -1):
        for always in combinations(names, count):
            planned = [plan_stage(stage, always, sizes, budget) for stage in stages]
            if any(p is None for p in planned):
                continue
            cost = transfer_cost(planned, always, sizes)
            kept = sum(sizes[name].total for name in always)
            if best is None or (cost, -kept) < (best[0], -best[1]):
                best = (cost, kept, always, tuple(planned))
    if best is None:
        raise _too_small(family, given, smallest, "with offload")
    return OffloadPlan(family, budget, mode, best[2], best[3], dict(sizes), smallest)


def _resident_plan(
    family: str, sizes: dict[str, Sizes], stages: Sequence[Stage], budget: int, given: object
) -> OffloadPlan:
    how = 'with everything on the device (offload="none")'
    smallest = round_up(resident_floor(stages, sizes))
    always = tuple(sizes)
    planned = [plan_stage(stage, always, sizes, budget) for stage in stages]
    if budget < smallest or any(p is None for p in planned):
        raise _too_small(family, given, smallest, how)
    return OffloadPlan(family, budget, "none", always, tuple(planned), dict(sizes), smallest)  # type: ignore[arg-type]


def _too_small(family: str, given: object, smallest: int, how: str) -> InvalidParameter:
    hint = f'the smallest that works {how} is max_gpu_memory="{budget_text(smallest)}"'
    if "none" in how:
        hint += ', or let ditto move weights (offload="cpu")'
    return InvalidParameter("max_gpu_memory", given, f"is too small for {family}", hint)
