"""Stage 2's distilled LoRA (two-stage: stage 2 only; distilled: both stages, when the checkpoint is not itself
distilled), on the weights for the length of a `with` block.

"side" (the default) applies it beside the weights at run time (loading/lora_side.py), its factors moved to
the device once per pipeline; "fuse" fuses it in place as the official code does and unfuses it exactly
after (a pass over 18.5 B weights per request at full size). User LoRAs (`LTX2Pipeline.load_lora`) are
always fused, once per load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ditto.engine_options import DISTILLED_LORA_MODES
from ditto.errors import InvalidParameter
from ditto.loading.lora import LoraFile, LoraStack, read_lora
from ditto.loading.lora_ltx2 import ltx2_lora_key
from ditto.loading.lora_side import LoraSide, SideFactors


def check_distilled_lora_mode(mode: str) -> str:
    if mode not in DISTILLED_LORA_MODES:
        raise InvalidParameter(
            "distilled_lora_mode", mode, "is not known", f"use one of {list(DISTILLED_LORA_MODES)}"
        )
    return mode


class DistilledLora:
    """The distilled LoRA of one pipeline: its file read once, its side factors prepared once per file."""

    def __init__(self, path: Path | None, stack: LoraStack, side: LoraSide, mode: str = "side") -> None:
        self.path = path
        self.stack, self.side = stack, side
        self.mode = check_distilled_lora_mode(mode)
        self.file: LoraFile | None = None
        self.factors: tuple[LoraFile, SideFactors] | None = None
        # Offload (acceleration/offload): the side factors are made on this device (the host) and handed to
        # `adopt_factors`, which returns them with host homes that move with their blocks. None: the targets'
        # device, as without offload.
        self.factor_device: torch.device | None = None
        self.adopt_factors: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None

    def set_mode(self, mode: str) -> None:
        self.mode = check_distilled_lora_mode(mode)

    def use_file(self, lora: LoraFile) -> None:
        """Use this LoRA, already read (e.g. the benchmarks' in-memory one), instead of reading `path` (which
        still says whether the checkpoint has a distilled LoRA at all)."""
        self.file = lora

    def read(self) -> LoraFile:
        if self.file is None:
            self.file = read_lora(self.path, ltx2_lora_key)
        return self.file

    @contextmanager
    def applied(self, active: bool = True) -> Iterator[None]:
        """The LoRA on the transformer for the block, off after it (nothing if not `active`, or for a
        checkpoint that has none: one that is itself distilled)."""
        if not active or self.path is None:
            yield
            return
        lora = self.read()
        if self.mode == "fuse":
            self.stack.fuse(lora, 1.0)
            try:
                yield
            finally:
                self.stack.unfuse_last()
            return
        self.side.attach(self._side_factors(lora))
        try:
            yield
        finally:
            self.side.detach()

    def _side_factors(self, lora: LoraFile) -> SideFactors:
        """On the device, built on first use and kept with the file they came from (a new file is prepared
        again)."""
        if self.factors is None or self.factors[0] is not lora:
            factors = self.side.prepare(lora, 1.0, device=self.factor_device)
            if self.adopt_factors is not None:
                names = list(factors.factors)
                kept = self.adopt_factors([t for name in names for t in factors.factors[name]])
                pairs = {name: (kept[2 * i], kept[2 * i + 1]) for i, name in enumerate(names)}
                factors = SideFactors(factors.source, pairs)
            self.factors = (lora, factors)
        return self.factors[1]
