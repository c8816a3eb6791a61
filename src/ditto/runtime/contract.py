"""The contract between a sampling loop and a transformer's block loop: what one transformer call is, whose
state it reads, and the plan of blocks a loop feature sees.

A sampling loop (one stage of one request) makes one `LoopState` and, for each transformer call, one
`PassContext` naming the guidance passes that call computes. Everything per request lives here, never on
a model or in a global: the LTX-2 text K/V store, and the loop features (step cache, offload, sequence
parallelism) with their own state. Two requests, or two stages of one request, never share a `LoopState`.

A model's `run_blocks(streams, inputs, ctx)` turns its blocks into a `BlockPlan` (one `BlockCall` per block,
plus the transitions between kinds of block) and hands it to `block_loop.run_block_loop`. Streams are the
hidden-state tensors the blocks carry: (video, audio) for LTX-2, (image, text) for Qwen-Image and FLUX.2's
double-stream blocks, then (joined,) for FLUX.2's single-stream blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import torch
from torch import nn

Streams = tuple[torch.Tensor, ...]
RunBlocks = Callable[["BlockPlan", Streams, "PassContext | None"], Streams]


class PassKind(str, Enum):
    """The guidance pass a batch sample belongs to. A feature keeps its state per kind (a step cache's
    residuals of the unconditional pass are never mixed with the conditional pass's)."""

    COND = "cond"  # the prompt
    UNCOND = "uncond"  # the negative prompt (CFG, Qwen-Image's true CFG)
    PERTURBED = "perturbed"  # the prompt with self-attention skipped at the STG blocks (LTX-2)
    ISOLATED = "isolated"  # the prompt with no audio<->video attention (LTX-2 modality guidance)


@dataclass
class LoopState:
    """Per-request state of one sampling loop; made by the loop, dropped when the loop ends.

    features: the block-loop features this loop runs with, outermost first (see `LoopFeature`).
    text_kv: cached per-prompt values keyed by the loop's own keys (LTX-2.0's text keys/values: they
        depend only on the prompt and the weights, both fixed for one loop).
    """

    num_steps: int
    features: Sequence[LoopFeature] = ()
    text_kv: dict[Hashable, Any] = field(default_factory=dict)

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`text_kv[key]`, computed on first use."""
        if key not in self.text_kv:
            self.text_kv[key] = compute()
        return self.text_kv[key]


@dataclass(frozen=True)
class PassContext:
    """One transformer call of a sampling loop.

    kinds: the pass kind of each batch segment, in batch order; a batched CFG pair is
        (UNCOND, COND) with each kind's samples contiguous and of equal count.
    step: the index of the sampling step (0-based); sigma: its noise level, a host float (decisions never
        read the device). A sampler that calls the model twice in a step (res2s) gives both calls the
        step's index and each call's own sigma; `substep` tells them apart.
    tapped_at: another pass of this step resumes from this one's streams at that block (LTX-2's STG prefix
        reuse taps the conditional pass); None: nobody does.
    resumes: for a pass whose plan starts after a prefix (`BlockPlan.first > 0`), the kind of the tapped pass
        of this step it continues; what that pass computed before `first` counts as this one's too.
    """

    kinds: tuple[PassKind, ...]
    step: int
    sigma: float
    loop: LoopState
    substep: int = 0
    tapped_at: int | None = None
    resumes: PassKind | None = None

    @property
    def kind(self) -> PassKind:
        """The single kind of an unbatched pass (an error for a batched group)."""
        if len(self.kinds) != 1:
            raise ValueError(f"this pass computes {len(self.kinds)} kinds at once: {self.kinds}")
        return self.kinds[0]

    @property
    def num_steps(self) -> int:
        return self.loop.num_steps

    def segments(self, batch: int) -> list[tuple[PassKind, slice]]:
        """Each kind's rows of a batch of `batch` samples."""
        if batch % len(self.kinds):
            raise ValueError(
                f"a batch of {batch} does not split into the {len(self.kinds)} kinds {self.kinds}"
            )
        size = batch // len(self.kinds)
        return [(kind, slice(i * size, (i + 1) * size)) for i, kind in enumerate(self.kinds)]


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
    first: the model's index of the block `calls[0]` is. 0, except for a pass that resumes after a prefix
    another pass of the same step already ran (LTX-2's STG pass continues from the conditional pass's
    streams at its first perturbed block, models/ltx2/stg.py): its plan holds only the blocks it runs.
    sequence: where the streams may be split over a sequence-parallel group, and how to rebuild the calls for
    sharded inputs (a `parallel.plan.SequenceSplit`; None: the model declares none).
    """

    calls: Sequence[BlockCall]
    transitions: Mapping[int, Callable[[Streams], Streams]] = field(default_factory=dict)
    first: int = 0
    sequence: Any = None

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

    Optional class attributes a loop reads with getattr (False when absent): `replayable` (decides nothing
    per step in Python, so whole passes may be recorded as CUDA graphs) and `handles_resumed_plans` (treats a
    plan with `first > 0` right, e.g. indexes blocks by `plan.first + i`; LTX-2's STG prefix reuse hands
    such plans only to loops whose features all say so).
    """

    def run_blocks(
        self, plan: BlockPlan, streams: Streams, ctx: PassContext, inner: RunBlocks
    ) -> Streams: ...


@dataclass(frozen=True)
class LoopInfo:
    """What a feature factory knows when a sampling loop starts (one per stage of one request).

    request: the family's validated parameters of this request (read them, never change them).
    stats: the request's own record, shared by all its loops: features write what they did there (e.g. a step
        cache's computed and skipped steps per pass kind); the pipeline returns it as `Result.stats`.
    """

    family: str
    stage: str  # the stage vocabulary: "denoise", "denoise_stage_1", "denoise_stage_2"
    num_steps: int
    request: Any
    stats: dict[str, Any]


# Registered on a pipeline (`pipeline.loop_features`); called once per sampling loop; None = not for this loop.
FeatureFactory = Callable[[LoopInfo], "LoopFeature | None"]


def make_features(factories: Sequence[FeatureFactory], info: LoopInfo) -> tuple[LoopFeature, ...]:
    """Fresh features for one sampling loop, in the factories' order (outermost first)."""
    made = (make(info) for make in factories)
    return tuple(feature for feature in made if feature is not None)


@dataclass
class RequestLoops:
    """One request's sampling loops: each loop's fresh features, and the request's stats (`Result.stats`).
    A pipeline makes one per request from its registered factories and hands it to every denoise loop."""

    family: str
    request: Any
    factories: Sequence[FeatureFactory] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def features(self, stage: str, num_steps: int) -> tuple[LoopFeature, ...]:
        return make_features(
            self.factories, LoopInfo(self.family, stage, num_steps, self.request, self.stats)
        )
