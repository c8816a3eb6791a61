"""The parallel loop feature: one per sampling loop (registered first, so it wraps every other feature).

As a `PassRunner` it splits each step's guidance passes over the loop's CFG group (parallel/cfg.py); the
split is chosen from the number of passes the loop's steps run (parallel/mesh.py: a guidance-free stage
gives all its ranks to sequence parallelism). As a `LoopFeature` it runs each transformer pass's blocks
sequence-parallel over the loop's sequence group: the model's declared streams and per-token inputs are
sharded, the blocks run (with every feature inside this one) on this rank's tokens, and the streams are
gathered back, so the model's head and the guidance see whole tensors (parallel/sequence.py).

The step cache (acceleration/step_cache/) registers itself outside this feature and hands it each range of
blocks (Fn / middle / Bn) as a plan of its own, without the model's sequence declaration: in such a cached
loop every rank of the sequence group computes whole passes (the same output, no sequence speed-up; the
stats say so), and the cache decides on whole tensors, the same on every rank. CFG-parallel is unaffected
(each rank caches the kinds it runs).

LTX-2's STG prefix reuse (models/ltx2/stg.py) holds in every layout, so this feature `handles_resumed_plans`:
* Ulysses: the conditional pass's tap is taken inside this feature's sharded block loop, so it holds this
  rank's token shards; the resumed STG pass continues on them with the same layout (nothing sharded or
  exchanged on the way in) and its streams are gathered at the end like any pass's.
* CFG-parallel: the tapped streams stay on the group that ran the conditional pass. The denoiser orders the
  STG pass right after it (pipelines/ltx2/denoise.py `pass_groups`), so the contiguous deal (cfg.py) puts
  both on one group wherever a group runs more than one pass, and the STG pass resumes there; where the
  split deals them apart it runs whole (the denoiser resumes only from a tap its own process made).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ditto.parallel.cfg import run_split
from ditto.parallel.mesh import LoopSplit, Mesh
from ditto.parallel.plan import SequencePlan
from ditto.parallel.sequence import SequenceLayout
from ditto.runtime.contract import (
    BlockPlan,
    LoopInfo,
    PassContext,
    PassKind,
    RunBlocks,
    Streams,
)
from ditto.runtime.passes import Outputs, RunKinds, run_locally

SEQUENCE_OFF = "a step cache wraps this loop: its ranges run whole on every rank of the sequence group"


class ParallelLoop:
    # Makes no per-step decision in Python: its collectives are the same every step, so a pass with them
    # may be recorded as a CUDA graph (NCCL's collectives are recordable).
    replayable = True
    handles_resumed_plans = True  # in every layout (the module docstring says how)

    def __init__(self, mesh: Mesh, info: LoopInfo) -> None:
        self.mesh, self.info = mesh, info
        self.split: LoopSplit = mesh.split(1)  # until a step names its passes: every rank on one pass
        self.whole = ("audio",) if mesh.config.audio == "replicate" else ()
        self._layouts: dict[tuple, SequenceLayout] = {}
        # The last tapped pass this feature ran sharded: (step, substep, kinds) and its layout; a pass
        # resuming from it gets this rank's shards of its streams.
        self._tapped: tuple[tuple, SequenceLayout] | None = None

    def run_passes(self, groups: Sequence[tuple[PassKind, ...]], run: RunKinds) -> dict[PassKind, Outputs]:
        self._choose(sum(len(kinds) for kinds in groups))
        if self.split.cfg is None:
            return run_locally(groups, run)
        return run_split(groups, run, self.split.cfg)

    def run_blocks(self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks) -> Streams:
        group, declared = self.split.sequence, plan.sequence
        if group is not None and declared is None:
            self._record(sequence_off=SEQUENCE_OFF)
        if group is None or declared is None:
            return inner(plan, streams, ctx)
        if plan.first:
            layout = self._tapped_layout(ctx)
            if layout is None:
                # Its tapped pass ran whole (a step cache handed this feature its blocks in ranges without
                # the declaration), so the tap holds whole streams: run it whole too, as that cached loop.
                return inner(plan, streams, ctx)
        else:
            layout = self._layout(declared.plan, streams)
            streams = layout.shard_streams(streams)
            if ctx.tapped_at is not None:
                self._tapped = ((ctx.step, ctx.substep, ctx.kinds), layout)
        local = declared.rebuild(layout.shard_inputs(declared.inputs))
        out = inner(local, streams, ctx)
        return layout.gather_streams(out, plan.first + len(plan))

    def _tapped_layout(self, ctx: PassContext) -> SequenceLayout | None:
        """The layout whose shards a resumed pass's streams are: its tapped pass's of this step, if this
        feature ran that pass sharded (its tap was then taken on this rank's tokens), else None."""
        if self._tapped is None:
            return None
        key, layout = self._tapped
        return layout if key == (ctx.step, ctx.substep, (ctx.resumes,)) else None

    def _choose(self, passes: int) -> None:
        self.split = self.mesh.split(passes)
        self._record(cfg=self.split.degree, sequence=self.split.sequence_size)

    def _record(self, **values: Any) -> None:
        """What this loop used, in the request's stats (`Result.stats["parallel"][stage]`)."""
        self.info.stats.setdefault("parallel", {}).setdefault(self.info.stage, {}).update(values)

    def _layout(self, plan: SequencePlan, streams: Streams) -> SequenceLayout:
        """One layout per declaration, split and stream shapes: the same object every step, so a compiled
        block's guards on it hold."""
        key = (id(plan), id(self.split), *(tuple(stream.shape) for stream in streams))
        layout = self._layouts.get(key)
        if layout is None or layout.plan is not plan:
            layout = self._layouts[key] = SequenceLayout(self.split.sequence, plan, streams, self.whole)
        return layout


class ParallelFeatures:
    """The factory a pipeline registers first in its `loop_features`: a fresh ParallelLoop per loop."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    def __call__(self, info: LoopInfo) -> ParallelLoop:
        return ParallelLoop(self.mesh, info)


def attach(pipeline: Any, mesh: Mesh) -> None:
    """Give a pipeline its parallel pieces: the loop feature (outermost), and the mesh for the stages that
    split work outside the denoising loops (LTX-2's VAE decode and text encoding: `components.parallel`)."""
    pipeline.loop_features.insert(0, ParallelFeatures(mesh))
    components = getattr(pipeline, "components", None)
    if hasattr(components, "parallel"):
        components.parallel = mesh


def detach(pipeline: Any) -> None:
    """The pipeline as one process runs it again (benchmarks time both on the same weights)."""
    pipeline.loop_features[:] = [f for f in pipeline.loop_features if not isinstance(f, ParallelFeatures)]
    components = getattr(pipeline, "components", None)
    if hasattr(components, "parallel"):
        components.parallel = None
