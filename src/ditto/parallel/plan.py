"""What a model declares about its sequences, as data: where the block loop's streams are split over a
sequence-parallel group and gathered back, which of its per-pass inputs run along those tokens, and, at
each attention call, which named segments the queries and the keys are made of.

A model names its token segments ("video", "audio", "image", "text") and declares a `SequencePlan` as a
class attribute; its `run_blocks` hands the block loop a `SequenceSplit` (the plan, this forward's pass
inputs, and how to make the block calls for other inputs). The sequence-parallel loop feature
(parallel/loop.py) then shards the streams and the per-token inputs, puts the layout into the inputs'
`layout_field`, runs the blocks, and gathers the streams. Each attention call asks the layout for its
split with `attention_split(layout, q_segments, kv_segments)`: None without sequence parallelism, so the
models read the same with one process and with many.

A segment the layout does not know (LTX-2's text, only ever keys and values) is whole on every rank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Segments = tuple[str, ...]


@dataclass(frozen=True)
class Tokens:
    """A per-token pass input: its `axis` runs over the tokens of `segments`, in order (one stream's single
    segment, or a joined stream's segments, e.g. FLUX.2's RoPE table over [text, image]). A value whose axis
    has size 1 is shared by every token and stays whole. Tuples (cos/sin pairs, NamedTuples) are sharded
    element by element with the same declaration."""

    segments: Segments
    axis: int


@dataclass(frozen=True)
class SequencePlan:
    """Where a model's sequences are split and gathered.

    streams: the segments of each stream the block loop starts with (each a single segment: its length is
        the stream's token count).
    transitions: the streams' segments after the transition that runs before block i (FLUX.2 joins
        (image, text) into one [text, image] stream).
    inputs: per field of the pass inputs, its `Tokens` (or a tuple of them for a tuple of values).
    attentions: the (query segments, key segments) of every attention call of the blocks: the layout makes
        their splits up front, so a compiled block only ever reads them (a split made inside the first
        compiled call would change what the graph's guards saw, and recompile the block).
    layout_field: the field of the pass inputs that receives the layout (None without parallelism).
    """

    streams: tuple[Segments, ...]
    transitions: Mapping[int, tuple[Segments, ...]] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    attentions: tuple[tuple[Segments, Segments], ...] = ()
    layout_field: str = "sequence"

    def streams_after(self, blocks: int) -> tuple[Segments, ...]:
        """The streams' segments as the last of `blocks` blocks leaves them."""
        streams = self.streams
        for index in sorted(self.transitions):
            if index < blocks:
                streams = self.transitions[index]
        return streams


@dataclass(frozen=True)
class SequenceSplit:
    """One forward's sequence declaration, handed to the block loop with its plan (`BlockPlan.sequence`)."""

    plan: SequencePlan
    inputs: Any  # this forward's pass inputs (a dataclass holding the `plan.inputs` fields)
    rebuild: Callable[[Any], Any]  # pass inputs -> the BlockPlan running the same blocks with them


def attention_split(layout: Any, q: Segments, kv: Segments) -> Any:
    """The split of one attention call (queries made of segments `q`, keys and values of `kv`), or None
    when the forward runs without sequence parallelism."""
    return None if layout is None else layout.attention(q, kv)
