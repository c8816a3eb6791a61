"""LoRAs applied beside the weights at run time: `y = W x + b + (s B)(A x)` at each target Linear.

Fusing (`lora.LoraStack`) is free per step but costs a pass over every touched weight per attach/detach
(on a GPU the originals go to host memory and back: 25-39 s per request for LTX-2's distilled LoRA,
18.5 B weights). The side path leaves the weights alone: attaching puts a `SideLinear` (the original
Linear, same Parameter objects, plus the two factors as non-persistent buffers) in each target's place,
detaching puts the original Linear back, so the weights stay bit for bit what they were and nothing is
copied per request. It costs two thin matmuls per target and step instead (rank 384 adds
about 19 % to the FLOPs of a 4096x4096 linear).

Numerically `W x + b + (s B)(A x)` and the fused `(W + s B A) x + b` differ only by rounding: in float32
by ~1e-6 relative, in bfloat16 the side path is the more exact one (the fused weight is rounded to bf16).

Why a wrapper and not a forward hook: torch.compile does not guard on module hooks by default
(torch._dynamo.config.skip_nnmodule_hook_guards), so a hook added after a block was compiled is silently
ignored by its graph. A changed submodule type is guarded: inside compiled blocks (`compile_blocks`)
attaching costs one recompile and detaching goes back to the first graph; the factors as buffers are graph
inputs like the weights, so one graph still serves every block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ditto.acceleration.fp8 import Fp8Linear
from ditto.loading.lora import LoraFile, raise_if_problems


class SideLinear(nn.Module):
    """A Linear plus a LoRA beside it: base(x) + up(down(x)), the base's weights untouched."""

    def __init__(self, base: nn.Module, down: torch.Tensor, up: torch.Tensor) -> None:
        super().__init__()
        self.base = base
        self.register_buffer("down", down, persistent=False)  # A [rank, in]
        self.register_buffer("up", up, persistent=False)  # s * B [out, rank]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.down), self.up)

    # Code that reads a Linear's attributes (shapes, dtype) sees the base's.
    @property
    def weight(self) -> nn.Parameter:
        return self.base.weight

    @property
    def bias(self) -> nn.Parameter | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features


@dataclass(frozen=True)
class SideFactors:
    """One LoRA ready to attach: per target "component.module.path", (A [rank, in], s*B [out, rank]) on
    the target's device and dtype. Built once (the host -> device copy), attached per request."""

    source: str
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LoraSide:
    """At most one LoRA at a time applied beside the weights of named modules (component -> module, as
    `LoraStack` takes them). `attach`/`detach` swap submodules only, never a weight."""

    modules: dict[str, nn.Module]
    # (parent module, attribute name, original Linear) of each swapped target, to put back on detach.
    swapped: list[tuple[nn.Module, str, nn.Linear]] = field(default_factory=list)
    attached: str | None = None

    def prepare(self, lora: LoraFile, scale: float = 1.0, device: torch.device | None = None) -> SideFactors:
        """Check every target (a Linear of the right shape) and move the factors to its device (or `device`:
        the host, where offload keeps them) and dtype, the up matrix scaled as the fused path scales it
        ((B * scale) in the weight's dtype)."""
        linears = self._linears(lora)
        factors = {}
        for name, pair in lora.pairs.items():
            target_device, dtype = _compute_device_dtype(linears[name])
            where = device or target_device
            down = pair.down.to(where, dtype)
            up = pair.up.to(where, dtype)
            factor = scale * pair.multiplier
            factors[name] = (down, up if factor == 1.0 else up * factor)
        return SideFactors(f"{lora.path}:{scale}", factors)

    def attach(self, side: SideFactors) -> None:
        if self.attached is not None:
            raise RuntimeError(f"a side LoRA ({self.attached}) is attached already; detach it first")
        self.attached = side.source
        for name, (down, up) in side.factors.items():
            parent_name, _, leaf = name.rpartition(".")
            parent = _find_module(self.modules, parent_name)
            linear = getattr(parent, leaf)
            self.swapped.append((parent, leaf, linear))
            setattr(parent, leaf, SideLinear(linear, down, up))

    def detach(self) -> None:
        """Put every original Linear back: the modules are as they were before `attach`."""
        for parent, leaf, linear in reversed(self.swapped):
            setattr(parent, leaf, linear)
        self.swapped, self.attached = [], None

    def _linears(self, lora: LoraFile) -> dict[str, nn.Linear]:
        """Every target as a Linear; wrong names, kinds or shapes are one error naming them."""
        found, problems = {}, []
        for name, pair in lora.pairs.items():
            module = _find_module(self.modules, name)
            if not isinstance(module, (nn.Linear, Fp8Linear)):
                problems.append(f"{name} (not a Linear: the side path applies LoRAs to Linears only)")
                continue
            if _in_fused_projection(self.modules, name):
                problems.append(f"{name} (its attention runs a fused QKV/KV product that never calls it)")
                continue
            shape = (pair.up.flatten(1).shape[0], pair.down.flatten(1).shape[1])
            weight_shape = (module.out_features, module.in_features)
            if shape != weight_shape:
                problems.append(f"{name} (LoRA {shape} vs weight {weight_shape})")
            found[name] = module
        raise_if_problems(lora, problems, "cannot be applied beside the weights", 'or fuse it ("fuse")')
        return found


def _compute_device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where a target computes and in which dtype its output comes (an FP8 Linear: its bf16 output)."""
    if isinstance(module, Fp8Linear):
        return module.weight_fp8.device, module.out_dtype
    return module.weight.device, module.weight.dtype


def _find_module(modules: dict[str, nn.Module], target: str) -> nn.Module | None:
    component, _, path = target.partition(".")
    try:
        return modules[component].get_submodule(path)
    except (KeyError, AttributeError):
        return None


def _in_fused_projection(modules: dict[str, nn.Module], target: str) -> bool:
    """A to_q/to_k/to_v whose attention computes them as one fused product (`fuse_projections`): the
    Linear itself is never called, so a LoRA beside it would silently do nothing."""
    parent, _, leaf = target.rpartition(".")
    attention = _find_module(modules, parent)
    return leaf in ("to_q", "to_k", "to_v") and getattr(attention, "fused", None) is not None
