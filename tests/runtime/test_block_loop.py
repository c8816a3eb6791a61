"""The block-loop contract: plans run in order with their transitions, features wrap the loop in order and
see the pass, progress counts across a request's loops."""

import pytest
import torch
from torch import nn

from ditto.runtime import (
    BlockCall,
    BlockPlan,
    LoopState,
    PassContext,
    PassKind,
    Progress,
    run_block_loop,
)


def _adder(value: float) -> BlockCall:
    return BlockCall(nn.Identity(), lambda streams: tuple(s + value for s in streams))


def _plan() -> BlockPlan:
    join = lambda streams: (torch.cat(streams, dim=0),)  # noqa: E731
    return BlockPlan([_adder(1), _adder(2), _adder(4), _adder(8)], transitions={2: join})


def test_plan_runs_blocks_and_transitions_in_order():
    streams = (torch.zeros(1), torch.ones(1))
    (out,) = _plan().run(streams)
    assert out.tolist() == [15.0, 16.0]  # joined before block 2: 0+1+2 | 1+1+2, then +4+8


def test_ranges_compose_to_the_whole_plan():
    plan, streams = _plan(), (torch.zeros(1), torch.ones(1))
    middle = plan.run(plan.run(streams, 0, 1), 1, 3)
    assert torch.equal(plan.run(middle, 3)[0], plan.run(streams)[0])


def test_convert_applies_only_the_transitions_inside_a_range():
    plan, streams = _plan(), (torch.zeros(1), torch.ones(1))
    (joined,) = plan.convert(streams, 0, 4)
    assert joined.tolist() == [0.0, 1.0]
    assert plan.convert(streams, 3, 4) is streams  # no transition at block 3
    assert plan.convert(streams, 0, 2) is streams  # the join belongs to block 2


class Recorder:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def run_blocks(self, plan, streams, ctx, inner):
        self.log.append((self.name, ctx.kinds, ctx.step))
        return inner(plan, streams, ctx)


def test_features_wrap_the_loop_outermost_first_and_see_the_pass():
    log: list = []
    loop = LoopState(num_steps=3, features=[Recorder("outer", log), Recorder("inner", log)])
    ctx = PassContext((PassKind.UNCOND, PassKind.COND), step=1, sigma=0.5, loop=loop)
    out = run_block_loop(_plan(), (torch.zeros(1), torch.ones(1)), ctx)
    assert out[0].tolist() == [15.0, 16.0]
    pair = (PassKind.UNCOND, PassKind.COND)
    assert log == [("outer", pair, 1), ("inner", pair, 1)]


def test_a_feature_may_skip_blocks():
    class SkipMiddle:
        def run_blocks(self, plan, streams, ctx, inner):
            streams = plan.run(streams, 0, 1)
            return plan.run(plan.convert(streams, 1, 3), 3)

    loop = LoopState(num_steps=1, features=[SkipMiddle()])
    ctx = PassContext((PassKind.COND,), step=0, sigma=1.0, loop=loop)
    (out,) = run_block_loop(_plan(), (torch.zeros(1), torch.ones(1)), ctx)
    assert out.tolist() == [9.0, 10.0]  # blocks 1 and 2 skipped, the join still applied


def test_segments_split_a_batched_pair():
    ctx = PassContext((PassKind.UNCOND, PassKind.COND), 0, 1.0, LoopState(num_steps=1))
    assert ctx.segments(4) == [(PassKind.UNCOND, slice(0, 2)), (PassKind.COND, slice(2, 4))]
    with pytest.raises(ValueError, match="does not split"):
        ctx.segments(3)
    with pytest.raises(ValueError, match="2 kinds"):
        _ = ctx.kind


def test_loop_state_caches_per_key():
    loop, calls = LoopState(num_steps=1), []
    compute = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert loop.cached("a", compute) == 1 and loop.cached("a", compute) == 1
    assert loop.cached("b", compute) == 2


def test_progress_counts_across_loops():
    events = []
    progress = Progress(total=5, callback=events.append)
    with progress.loop("stage 1", 3) as step:
        for _ in range(3):
            step()
    with progress.loop("stage 2", 2) as step:
        for _ in range(2):
            step(latents=lambda: "x")
    assert [(e.stage, e.step, e.total, e.stage_step, e.stage_total) for e in events] == [
        ("stage 1", 1, 5, 1, 3),
        ("stage 1", 2, 5, 2, 3),
        ("stage 1", 3, 5, 3, 3),
        ("stage 2", 4, 5, 1, 2),
        ("stage 2", 5, 5, 2, 2),
    ]
    assert events[-1].latents() == "x" and events[0].latents is None
