"""Text keys/values computed once per sampling loop instead of once per step, kept in the loop's state.

The text cross-attentions' keys and values depend only on the prompt embeddings and the weights, and
both stay fixed for a whole sampling loop (LTX-2.0; LTX-2.3's prompt AdaLN modulates the text by the
timestep, so there nothing is cached). Per step that is 48 x 2 products over 1,024 text tokens per
sample and modality: about 8 TFLOP of a 96 TFLOP CFG-pair step at 768x512x121's stage 1.

They live in the loop's `LoopState` (ditto.runtime), made by the denoise loop and dropped with it, so
nothing per request stays on the model, and the weights cannot change under them (LoRAs are attached or
fused between loops, never inside one). Entries are keyed by the prompt tensors themselves (identity and
in-place version): the CFG pair's batched prompts and the lone positive prompt of the STG and
modality-isolation passes each get their own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ditto.models.ltx2.blocks import BlockKV
from ditto.runtime.contract import LoopState

_KEY = "ltx2.text_kv"


class TextKV:
    """One prompt set's text keys/values, block by block: each block's computed the first time that block runs
    in the loop, so a block whose weights are off the device (block offload) is computed while it is loaded."""

    def __init__(
        self, prompts: tuple[torch.Tensor, ...], count: int, compute: Callable[[int], BlockKV]
    ) -> None:
        self.prompts = prompts  # kept alive with their K/V, so their ids are not reused while the loop lasts
        self.blocks: list[BlockKV | None] = [None] * count
        self.compute = compute

    def __call__(self, index: int) -> BlockKV:
        kv = self.blocks[index]
        if kv is None:
            kv = self.blocks[index] = self.compute(index)
        return kv


def cached_text_kv(
    loop: LoopState, prompts: tuple[torch.Tensor, ...], count: int, compute: Callable[[int], BlockKV]
) -> TextKV:
    """The per-block K/V of these prompt tensors in this loop (`compute(i)`: block i's), made on first use."""
    key = (_KEY, *(id(t) for t in prompts), *(_version(t) for t in prompts))
    return loop.cached(key, lambda: TextKV(prompts, count, compute))


def _version(tensor: torch.Tensor) -> int:
    """The in-place version counter; inference tensors (made under inference_mode) keep none."""
    return -1 if tensor.is_inference() else tensor._version
