"""Text keys/values computed once per denoising loop instead of once per step.

The text cross-attentions' keys and values depend only on the prompt embeddings and the weights, and
both stay fixed for a whole sampling loop (LTX-2.0; LTX-2.3's prompt AdaLN modulates the text by the
timestep, so there nothing is cached). Per step that is 48 x 2 products over 1,024 text tokens per
sample and modality: about 8 TFLOP of a 96 TFLOP CFG-pair step at 768x512x121's stage 1.

The cache is switched on only inside `TextKVCache.scope()` (the denoise loops open it), where the
weights cannot change (LoRAs are attached/fused between loops, not inside them). Entries are keyed by the
prompt tensors themselves (identity and in-place version), so the CFG pair and the single positive
prompt of the STG/modality passes each get their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

BlockKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # video k, v, audio k, v


@dataclass
class TextKVCache:
    active: bool = False
    entries: list[tuple[tuple[torch.Tensor, ...], tuple[int, ...], list[BlockKV]]] = field(
        default_factory=list
    )

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Cache within the block (one sampling loop at fixed weights); everything is dropped on exit."""
        self.active, self.entries = True, []
        try:
            yield
        finally:
            self.active, self.entries = False, []

    def get(
        self, prompts: tuple[torch.Tensor, ...], compute: Callable[[], list[BlockKV]]
    ) -> list[BlockKV] | None:
        """The per-block K/V for these prompt tensors (computed on first use); None outside a scope."""
        if not self.active:
            return None
        versions = tuple(_version(t) for t in prompts)
        for key, key_versions, kv in self.entries:
            if all(a is b for a, b in zip(key, prompts, strict=True)) and key_versions == versions:
                return kv
        kv = compute()
        self.entries.append((prompts, versions, kv))
        return kv


def _version(tensor: torch.Tensor) -> int:
    """The in-place version counter; inference tensors (made under inference_mode) keep none."""
    return -1 if tensor.is_inference() else tensor._version
