"""The step cache's rules on synthetic block plans, where every residual is known: per-kind state, a batched
pair that skips only when every kind may, LTX-2's audio-aware decision, warm-up and caps, TaylorSeer's
extrapolation, and the stream transitions (FLUX.2's join) inside a skipped range."""

from __future__ import annotations

import torch
from torch import nn

from ditto.acceleration.step_cache import StepCache, parse_cache_spec
from ditto.runtime import BlockCall, BlockPlan, LoopState, PassContext, PassKind, run_block_loop

PAIR, COND = (PassKind.UNCOND, PassKind.COND), (PassKind.COND,)


def block(fn) -> BlockCall:
    return BlockCall(nn.Identity(), lambda streams: tuple(fn(i, s) for i, s in enumerate(streams)))


def plan_at(shift: list[torch.Tensor], middle=None) -> BlockPlan:
    """Block 0 adds `shift[stream]` (so the Fn residual is `shift`), block 1 (the middle) doubles and adds
    `middle(stream)` (default 1), block 2 adds 10."""
    middle = middle or (lambda i: 1.0)
    return BlockPlan(
        [block(lambda i, s: s + shift[i]), block(lambda i, s: s * 2 + middle(i)), block(lambda i, s: s + 10)]
    )


def run(cache: StepCache, plan: BlockPlan, streams, kinds, step: int, steps: int = 10):
    ctx = PassContext(kinds, step, 1.0 - step / steps, LoopState(num_steps=steps, features=[cache]))
    return run_block_loop(plan, streams, ctx)


def make(spec: str, steps: int = 10, thresholds=(0.1,)) -> tuple[StepCache, dict]:
    record: dict = {}
    return StepCache(parse_cache_spec(spec), steps, thresholds, record), record


def test_never_skipping_specs_run_every_block_bit_for_bit() -> None:
    torch.manual_seed(0)
    weights = [torch.randn(8, 8) for _ in range(4)]
    plan = BlockPlan([block(lambda i, s, w=w: torch.tanh(s @ w)) for w in weights])
    for spec in ("dbcache:Fn=1,Bn=1,threshold=0,warmup=0", "mask:compute=all", "mask:compute=0-9,Fn=1"):
        cache, record = make(spec)
        for step in range(10):
            streams = (torch.randn(2, 3, 8), torch.randn(2, 5, 8))
            assert all(
                torch.equal(a, b) for a, b in zip(run(cache, plan, streams, PAIR, step), plan.run(streams))
            )
        assert record["cond"] == {"computed": 10, "cached": 0, "cached_steps": []}


def test_a_batched_pair_keeps_a_residual_per_kind() -> None:
    """Step 0 computes; step 1 skips the middle: each kind adds its own step-0 residual (2x + 1 - x)."""
    cache, record = make("mask:compute=0,Fn=1,Bn=1")
    zero = [torch.zeros(2, 1, 1)]
    first = (torch.tensor([1.0, 5.0]).view(2, 1, 1),)  # rows: UNCOND 1, COND 5
    run(cache, plan_at(zero), first, PAIR, 0)
    second = (torch.tensor([100.0, 100.0]).view(2, 1, 1),)
    (out,) = run(cache, plan_at(zero), second, PAIR, 1)
    assert out.flatten().tolist() == [100 + (1 + 1) + 10, 100 + (5 + 1) + 10]
    assert record["uncond"]["cached_steps"] == record["cond"]["cached_steps"] == [1]


def test_a_batched_pair_skips_only_when_every_kind_may() -> None:
    cache, record = make("dbcache:Fn=1,threshold=0.1,warmup=1,max_cached=-1")
    x = (torch.ones(2, 4, 1),)
    steady, jump = torch.ones(1, 4, 1), torch.full((1, 4, 1), 3.0)
    shifts = [torch.cat([steady, steady]), torch.cat([jump, steady]), torch.cat([jump, steady])]
    for step, shift in enumerate(shifts):
        run(cache, plan_at([shift]), x, PAIR, step)
    # Step 1: COND's Fn residual is unchanged, UNCOND's tripled: the pair computes, both refresh; step 2 skips.
    assert record["cond"] == record["uncond"] == {"computed": 2, "cached": 1, "cached_steps": [2]}


def test_ltx2_decides_on_the_video_and_the_audio_residual() -> None:
    streams = (torch.ones(1, 4, 2), torch.ones(1, 3, 2))
    video, audio_moves = torch.ones(1, 4, 2), [torch.ones(1, 3, 2), torch.full((1, 3, 2), 2.0)]
    for thresholds, cached in (((0.1, 0.1), []), ((0.1, 1.0), [1])):
        cache, record = make("dbcache:Fn=1,warmup=1,max_cached=-1", thresholds=thresholds)
        for step, audio in enumerate(audio_moves):
            run(cache, plan_at([video, audio]), streams, COND, step)
        assert record["cond"]["cached_steps"] == cached, thresholds


def test_warmup_and_the_caps_in_a_row_and_in_all() -> None:
    """threshold >= 1 counts as always similar (as Cache-DiT): only warm-up and caps decide."""
    cache, record = make("dbcache:Fn=1,threshold=1,warmup=2,max_cached=2,max_cached_total=3")
    for step in range(10):
        run(cache, plan_at([torch.ones(1, 2, 1)]), (torch.ones(1, 2, 1),), COND, step)
    assert record["cond"]["cached_steps"] == [2, 3, 5]


def taylor_run(order: int, v) -> list[float]:
    """Outputs of steps 0-6 with the middle adding v(t) to 2x, computed at steps 0-3 and skipped after."""
    cache, _ = make(f"mask:compute=0-3,Fn=1,Bn=1,taylorseer={order}")
    outs = []
    for step in range(7):
        plan = plan_at([torch.zeros(1, 1, 1)], middle=lambda i, t=step: v(t))
        outs.append(run(cache, plan, (torch.ones(1, 1, 1),), COND, step)[0].item())
    return outs


def test_taylorseer_order_1_extrapolates_a_linear_residual_exactly() -> None:
    v = lambda t: 3.0 * t  # noqa: E731
    exact = [2 + v(t) + 10 for t in range(7)]  # the residual of the middle is x + v(t), with x = 1
    assert taylor_run(1, v) == exact
    assert taylor_run(0, v) == exact[:4] + [exact[3]] * 3  # plain reuse repeats step 3


def test_taylorseer_order_2_is_the_series_of_backward_differences() -> None:
    """At t = 3 + e: Y3 + d1 e + d2 e^2 / 2, d1 = Y3 - Y2, d2 = d1 - (Y2 - Y1) (unit gaps)."""
    v = lambda t: 0.5 * t * t - t  # noqa: E731
    y = [1 + v(t) for t in range(4)]  # the middle's residual: 2x + v - x
    d1, d2 = y[3] - y[2], (y[3] - y[2]) - (y[2] - y[1])
    expected = [2 + v(t) + 10 for t in range(4)] + [
        1 + y[3] + d1 * e + d2 * e * e / 2 + 10 for e in (1, 2, 3)
    ]
    assert taylor_run(2, v) == expected


def test_a_transition_inside_the_skipped_range_is_applied_before_the_residual() -> None:
    """FLUX.2's join (text, image) -> ([text, image],) inside the middle: a skipped pass joins its input and
    adds the joined residual."""
    join = lambda streams: (torch.cat([streams[1], streams[0]], dim=1),)  # noqa: E731
    calls = [
        block(lambda i, s: s + 1),
        block(lambda i, s: s * 2),
        block(lambda i, s: s * 3),
        block(lambda i, s: s - 1),
    ]
    plan = BlockPlan(calls, transitions={2: join})
    cache, record = make("mask:compute=0,Fn=1,Bn=1")
    image, text = torch.ones(1, 2, 1), torch.zeros(1, 1, 1)
    first = run(cache, plan, (image, text), COND, 0)[0]
    assert torch.equal(first, plan.run((image, text))[0])
    (skipped,) = run(cache, plan, (image * 4, text), COND, 1)
    # Step 0's middle residual on the joined form: [text 1, image 2] -> [6, 12] (x2 then x3), residual [5, 10].
    assert skipped.flatten().tolist() == [(1 + 5) - 1, (5 + 10) - 1, (5 + 10) - 1]


def test_inner_features_see_each_range_as_a_plan_of_its_own() -> None:
    seen = []

    class Recorder:
        def run_blocks(self, plan, streams, ctx, inner):
            seen.append(len(plan))
            return inner(plan, streams, ctx)

    cache, _ = make("mask:compute=0,Fn=1,Bn=1")
    loop = LoopState(num_steps=2, features=[cache, Recorder()])
    plan = plan_at([torch.zeros(1, 1, 1)])
    for step in range(2):
        run_block_loop(plan, (torch.ones(1, 1, 1),), PassContext(COND, step, 0.5, loop))
    assert seen == [1, 1, 1, 1, 1]  # step 0: first, middle, last; step 1: first, last
