"""What a pipeline family tells the offload planner: its components (what each stage runs, which of them have
blocks that can stream) and its stages (which components each runs, the activation memory it needs).

Each family builds one `OffloadSpec` from its loaded pipeline (pipelines/<family>/residency.py). Components
are named parts of the loaded modules; two may share a module (LTX-2's "vae_encoder" is part of "vae"): the
residency works per tensor, so a tensor two parts share moves once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ditto.acceleration.offload.memory import module_tensors, tensor_bytes


@dataclass(frozen=True)
class Component:
    """name: what the plan calls it; modules: what a stage that runs it needs on the device; owners: what is
    moved to the host (default: the modules; a text encoder's unused vision tower is owned, never loaded);
    blocks: the repeated blocks inside `modules` that may stream (a DiT's blocks, a text encoder's layers)."""

    name: str
    modules: tuple[nn.Module, ...]
    owners: tuple[nn.Module, ...] = ()
    blocks: Sequence[nn.Module] = ()
    part_of: str | None = None  # a component whose modules hold all of this one's (loaded with it: no cost)
    via: str = "loop"  # how its blocks stream: "loop" (ditto's block loop) or "hooks" (transformers' layers)

    def tensors(self) -> list[torch.Tensor]:
        return module_tensors(self.modules)

    def owned_tensors(self) -> list[torch.Tensor]:
        return module_tensors(self.owners or self.modules)

    def block_tensors(self) -> list[list[torch.Tensor]]:
        return [module_tensors([block]) for block in self.blocks]

    def fixed_tensors(self) -> list[torch.Tensor]:
        """Everything the component loads besides its blocks (embeddings, heads, norms)."""
        in_blocks = {id(t) for block in self.block_tensors() for t in block}
        return [t for t in self.tensors() if id(t) not in in_blocks]

    @property
    def streamable(self) -> bool:
        return len(self.blocks) > 0

    @property
    def streams_in_loop(self) -> bool:
        return self.streamable and self.via == "loop"

    def sizes(self) -> tuple[int, tuple[int, ...]]:
        """(bytes besides the blocks, bytes of each block); a component without blocks is all fixed."""
        return tensor_bytes(self.fixed_tensors()), tuple(tensor_bytes(b) for b in self.block_tensors())


@dataclass(frozen=True)
class Stage:
    """One stage of a request (the stage vocabulary): the components it runs, its activation memory (an
    estimate for the family's default request, stated where it is made), how many times it runs its
    streamable component per request (what streaming costs), and bytes that stage adds to blocks (LTX-2's
    stage-2 LoRA factors beside each block), per component."""

    name: str
    components: tuple[str, ...]
    workspace: int
    passes: int = 1
    block_extra: dict[str, tuple[int, ...]] = field(default_factory=dict)
    fixed_extra: dict[str, int] = field(default_factory=dict)


@dataclass
class OffloadSpec:
    """components: every part a stage may need; stages(request): the stages a request runs, in order (None:
    the family's default request, which the plan printed at load is made for); attach(residency): the
    family's wiring once the residency exists (the compute device, LoRA write-backs, graphs that would read
    moved weights); detach(): its undoing when offload is turned off."""

    family: str
    components: tuple[Component, ...]
    stages: Callable[[object | None], tuple[Stage, ...]]
    attach: Callable[[object], None] | None = None
    detach: Callable[[], None] | None = None

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)


def text_encoder_component(
    model: nn.Module, loaded: tuple[nn.Module, ...] | None = None, name: str = "text_encoder"
) -> Component:
    """A transformers text encoder: its decoder layers stream through hooks; `loaded`: what the family runs of
    it (default: its language model, and its LM head if it has one), the rest (a vision tower the prompts
    never reach) is moved to the host and stays there."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList):
        decoder = model
    if loaded is None:
        head = getattr(model, "lm_head", None)
        loaded = (decoder,) if head is None else (decoder, head)
    return Component(name, loaded, (model,), decoder.layers, via="hooks")
