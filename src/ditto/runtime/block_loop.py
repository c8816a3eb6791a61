"""The one block loop every model runs: a plan through the loop's features (outermost first), or plainly.

No feature patches a model, and none guesses which guidance pass it is in: `ctx.kinds` says.
"""

from __future__ import annotations

from ditto.runtime.contract import BlockPlan, LoopFeature, PassContext, RunBlocks, Streams


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
