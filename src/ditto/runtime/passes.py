"""What one transformer call is, and whose state it reads: the typed channel from a sampling loop down to
a model's block loop.

A sampling loop (one stage of one request) makes one `LoopState` and, for each transformer call, one
`PassContext` naming the guidance passes that call computes. Everything per request lives here, never on
a model or in a global: the LTX-2 text K/V store, and the loop features (step cache, offload, sequence
parallelism) with their own state. Two requests, or two stages of one request, never share a `LoopState`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ditto.runtime.block_loop import LoopFeature


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
    """

    kinds: tuple[PassKind, ...]
    step: int
    sigma: float
    loop: LoopState
    substep: int = 0

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
