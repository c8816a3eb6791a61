"""The step cache of one sampling loop: a `LoopFeature` (runtime/contract.py) that splits each pass's block
plan into first Fn blocks / middle / last Bn blocks and skips the middle when it may.

State is per pass kind (`ctx.kinds`): the COND, UNCOND, PERTURBED and ISOLATED passes each keep their own
Fn residual, middle residual (or TaylorSeer terms) and counters, and each decides for itself. A batched
pass (LTX-2's CFG pair, kinds (UNCOND, COND)) runs as one batch, so it skips only when every kind in it
may skip; otherwise every kind computes and refreshes its state. Nothing is kept on the model or globally:
the feature lives exactly as long as its loop (one stage of one request).

The middle's residual is taken in the form the middle hands on (`plan.convert`: FLUX.2's text+image join
inside the range is applied to the input first), so a skipped middle is `convert(x) + residual`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ditto.acceleration.step_cache.spec import FIELD, CacheSpec
from ditto.acceleration.step_cache.taylorseer import TaylorSeer
from ditto.errors import InvalidParameter
from ditto.runtime.contract import BlockPlan, PassContext, PassKind, RunBlocks, Streams


@dataclass
class KindState:
    """What one pass kind remembers between its passes, and what it did (the Result's cache stats)."""

    record: dict[str, Any]  # {"computed": n, "cached": n, "cached_steps": [...]}, shared with the stats
    fn_residual: list[torch.Tensor] | None = None  # the decision streams' Fn residuals, last computed pass
    middle: list[torch.Tensor] | None = None  # the middle's residual per stream, last computed pass
    taylor: list[TaylorSeer] = field(default_factory=list)
    passes: int = 0  # passes of this kind so far: the TaylorSeer clock
    in_row: int = 0  # cached passes since the last computed one

    def computed(self) -> None:
        self.record["computed"] += 1
        self.in_row = 0

    def cached(self, step: int) -> None:
        self.record["cached"] += 1
        self.record["cached_steps"].append(step)
        self.in_row += 1

    def residual(self) -> list[torch.Tensor]:
        if self.taylor:
            return [series.predict(self.passes) for series in self.taylor]
        assert self.middle is not None
        return self.middle

    def keep(self, middle: list[torch.Tensor], order: int) -> None:
        if order:
            self.taylor = self.taylor or [TaylorSeer(order) for _ in middle]
            for series, value in zip(self.taylor, middle, strict=True):
                series.update(value, self.passes)
        else:
            self.middle = middle


@dataclass
class SharedPrefix:
    """What a tapped pass hands the pass of its step that resumes from it (LTX-2's STG pass continues the
    conditional pass): up to its first perturbed block the resumed pass is the tapped one, bit for bit, so
    the head's input, its Fn residuals and the middle's input are the tapped pass's."""

    step: tuple[int, int]  # (step, substep)
    kind: PassKind
    base: Streams  # the streams entering block 0, in the form block Fn - 1 leaves them (plan.convert)
    fn_residuals: list[torch.Tensor]
    middle_in: Streams
    cached: bool = False  # the tapped pass skipped its middle


class StepCache:
    """One loop's step cache. `decide_on`: the streams whose Fn residual the dbcache decision reads, each
    with its threshold (LTX-2: video and audio; the image families: the image stream).

    A resumed plan (`plan.first` = k > 0, the STG pass after the conditional one) is cached as the whole
    pass it stands for: with k <= Fn it runs its own head from block k; with Fn < k < L - Bn the head and
    the middle's input are the tapped pass's, so a computed middle runs only blocks [k, L - Bn) and its
    residual is taken from the tapped pass's middle input, and a skipped one costs no block at all; with
    k >= L - Bn every block it runs is in the tail, which always runs."""

    replayable = False  # decides per step in Python: a loop with it records no CUDA graph of a whole pass
    handles_resumed_plans = True

    def __init__(
        self, spec: CacheSpec, num_steps: int, decide_on: Sequence[float], record: dict[str, Any]
    ) -> None:
        self.spec = spec
        self.compute_steps = spec.computed_steps(num_steps)
        self.decide_on = tuple(decide_on)
        self.record = record
        self.kinds: dict[PassKind, KindState] = {}
        self.prefix: SharedPrefix | None = None  # the tapped pass of the current step

    def state(self, kind: PassKind) -> KindState:
        if kind not in self.kinds:
            counts = {"computed": 0, "cached": 0, "cached_steps": []}
            self.kinds[kind] = KindState(self.record.setdefault(kind.value, counts))
        return self.kinds[kind]

    def run_blocks(self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks) -> Streams:
        if plan.first:
            return self._run_resumed(plan, streams, ctx, inner)
        check_depth(self.spec, len(plan))
        first, last = self.spec.fn, len(plan) - self.spec.bn
        head = inner(segment(plan, 0, first), streams, ctx) if first else streams
        base = plan.convert(streams, 0, first)
        fn_residuals = self._fn_residuals(base, head)
        middle_in = plan.convert(head, first, last)
        if ctx.tapped_at is not None:
            self.prefix = SharedPrefix((ctx.step, ctx.substep), ctx.kind, base, fn_residuals, middle_in)
        return self._middle_and_tail(plan, ctx, inner, fn_residuals, middle_in, (head, first, last))

    def _run_resumed(self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks) -> Streams:
        """A plan starting at block k = plan.first, its streams the tapped pass's at k (see the class)."""
        k = plan.first
        check_depth(self.spec, k + len(plan))
        first, last = self.spec.fn, k + len(plan) - self.spec.bn
        prefix = self.prefix
        if prefix is None or prefix.step != (ctx.step, ctx.substep) or prefix.kind != ctx.resumes:
            raise RuntimeError(f"a resumed pass at step {ctx.step} without its tapped {ctx.resumes} pass")
        if k >= last:  # its whole middle is the tapped pass's: cached or computed with it
            state = self.state(ctx.kind)
            if prefix.cached:
                state.cached(ctx.step)
            else:
                state.computed()
            return inner(plan, streams, ctx)
        if k <= first:
            head = inner(segment(plan, 0, first - k), streams, ctx) if first > k else streams
            fn_residuals = self._fn_residuals(prefix.base, head)
            middle_in = plan.convert(head, first - k, last - k)
            return self._middle_and_tail(
                plan, ctx, inner, fn_residuals, middle_in, (head, first - k, last - k)
            )
        # The head and the blocks [Fn, k) are the tapped pass's: the middle runs on from block k.
        return self._middle_and_tail(
            plan, ctx, inner, prefix.fn_residuals, prefix.middle_in, (streams, 0, last - k)
        )

    def _middle_and_tail(
        self,
        plan: BlockPlan,
        ctx: PassContext,
        inner: RunBlocks,
        fn_residuals: list[torch.Tensor],
        middle_in: Streams,
        computed: tuple[Streams, int, int],
    ) -> Streams:
        """Skip the middle or compute it (`computed`: the streams it starts from and its range in `plan`),
        then the tail."""
        start_streams, start, stop = computed
        parts = [(self.state(kind), rows) for kind, rows in ctx.segments(middle_in[0].shape[0])]
        skip = self._may_skip(parts, fn_residuals, ctx.step)
        if ctx.tapped_at is not None and self.prefix is not None:
            self.prefix.cached = skip
        if skip:
            middle_out = self._skip(parts, middle_in, ctx.step)
        else:
            middle_out = inner(segment(plan, start, stop), start_streams, ctx)
            self._remember(parts, fn_residuals, middle_in, middle_out)
        for state, _ in parts:
            state.passes += 1
        return inner(segment(plan, stop, len(plan)), middle_out, ctx) if stop < len(plan) else middle_out

    def _fn_residuals(self, base: Streams, head: Streams) -> list[torch.Tensor]:
        """The first Fn blocks' residual of each decision stream (none for a mask)."""
        if self.spec.method != "dbcache":
            return []
        count = min(len(self.decide_on), len(head))
        return [head[i] - base[i] for i in range(count)]

    def _may_skip(self, parts: list[tuple[KindState, slice]], fn_residuals: list, step: int) -> bool:
        """Every kind of the pass may reuse its residual (a batch runs its blocks for all or none)."""
        if not all(self._allowed(state, step) for state, _ in parts):
            return False
        if self.spec.method == "mask":
            return True
        return self._similar(parts, fn_residuals)

    def _allowed(self, state: KindState, step: int) -> bool:
        """The rules that need no tensor: a residual to reuse, the mask, warm-up and the caps."""
        spec = self.spec
        if state.middle is None and not state.taylor:
            return False
        if self.compute_steps is not None:
            return step not in self.compute_steps
        if step < spec.warmup or max(self.decide_on) <= 0.0:
            return False
        if 0 <= spec.max_cached_total <= state.record["cached"]:
            return False
        return not 0 <= spec.max_cached <= state.in_row

    def _similar(self, parts: list[tuple[KindState, slice]], fn_residuals: list[torch.Tensor]) -> bool:
        """Each kind's relative L1 change of each decision stream under its threshold (one host sync)."""
        diffs, limits = [], []
        for state, rows in parts:
            previous = state.fn_residual or []
            for index, threshold in enumerate(self.decide_on[: len(fn_residuals)]):
                if threshold >= 1.0:
                    continue  # as Cache-DiT: a threshold of 1 or more always counts as similar
                current = _rows(fn_residuals[index], rows, len(parts))
                if threshold <= 0.0 or len(previous) <= index or previous[index].shape != current.shape:
                    return False
                diffs.append(relative_l1(previous[index], current))
                limits.append(threshold)
        if not diffs:
            return True
        return all(d < t for d, t in zip(torch.stack(diffs).tolist(), limits, strict=True))

    def _skip(self, parts: list[tuple[KindState, slice]], middle_in: Streams, step: int) -> Streams:
        residuals = [state.residual() for state, _ in parts]
        for state, _ in parts:
            state.cached(step)
        joined = [torch.cat(list(r), dim=0) if len(r) > 1 else r[0] for r in zip(*residuals, strict=True)]
        return tuple(x + r for x, r in zip(middle_in, joined, strict=True))

    def _remember(
        self,
        parts: list[tuple[KindState, slice]],
        fn_residuals: list[torch.Tensor],
        middle_in: Streams,
        middle_out: Streams,
    ) -> None:
        residual = [after - before for after, before in zip(middle_out, middle_in, strict=True)]
        for state, rows in parts:
            state.computed()
            state.fn_residual = [_rows(r, rows, len(parts)) for r in fn_residuals] or None
            state.keep([_rows(r, rows, len(parts)) for r in residual], self.spec.taylorseer)


def check_depth(spec: CacheSpec, depth: int) -> None:
    """Fn + Bn must leave at least one middle block of the model's `depth` to skip."""
    if spec.fn + spec.bn >= depth:
        raise InvalidParameter(
            FIELD, spec.text, f"leaves no middle block to cache: Fn + Bn >= the model's {depth} blocks",
            f"Fn + Bn must stay below {depth}",
        )  # fmt: skip


def _rows(tensor: torch.Tensor, rows: slice, kinds: int) -> torch.Tensor:
    """One kind's samples of a batched tensor (the tensor itself for an unbatched pass)."""
    return tensor if kinds == 1 else tensor[rows]


def relative_l1(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """mean |previous - current| / mean |previous|, in float32 (Cache-DiT's residual diff)."""
    previous, current = previous.float(), current.float()
    return (previous - current).abs().mean() / previous.abs().mean()


def segment(plan: BlockPlan, start: int, stop: int) -> BlockPlan:
    """Blocks [start, stop) of a plan as a plan of their own (its transitions re-indexed), so the features
    inside this one (offload, parallelism) see each range as they would see a whole loop."""
    if start == 0 and stop == len(plan):
        return plan
    transitions = {i - start: t for i, t in plan.transitions.items() if start <= i < stop}
    return BlockPlan(list(plan.calls[start:stop]), transitions)
