"""Feed-forward blocks (parameter names follow diffusers' FeedForward: net.0.proj, net.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.library.custom_op("ditto::linear_gelu_tanh", mutates_args=())
def linear_gelu_tanh(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GELU(tanh)(x W^T + b). On CUDA one cuBLASLt product with bias and GELU in its epilogue
    (`_addmm_activation`: cuBLASLt's GELU is the tanh form), so the 4x-wide hidden activation is written
    once instead of written, read and written again by a separate GELU kernel. The epilogue applies the bias
    and GELU to the float32 accumulator before the one bf16 rounding, where the plain path rounds twice:
    the numbers move (benchmarks/NOTES.md states by how much). Elsewhere the plain ops. A custom op, so
    a compiled graph keeps the call whole (inductor would split `_addmm_activation` back into two)."""
    flat = x.reshape(-1, x.shape[-1])
    if x.is_cuda:
        out = torch._addmm_activation(bias, flat, weight.t(), use_gelu=True)
    else:  # (the CPU `_addmm_activation` applies the erf GELU, not the tanh one)
        out = F.gelu(F.linear(flat, weight, bias), approximate="tanh")
    return out.view(*x.shape[:-1], weight.shape[0])


@linear_gelu_tanh.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], weight.shape[0])


class _ProjGelu(nn.Module):
    """Linear then tanh-approximated GELU; the linear is named `proj` as in diffusers."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)
        self.epilogue = False  # GELU in the product's epilogue (use_gelu_epilogue), for a plain biased Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # type(), not isinstance: an FP8 or LoRA-side replacement of `proj` keeps its own forward.
        if self.epilogue and type(self.proj) is nn.Linear and self.proj.bias is not None:
            return linear_gelu_tanh(x, self.proj.weight, self.proj.bias)
        return F.gelu(self.proj(x), approximate="tanh")


class GeluFeedForward(nn.Module):
    """dim -> mult*dim (GELU tanh) -> dim_out. Slot 1 is an identity where diffusers keeps a dropout."""

    def __init__(self, dim: int, mult: float = 4.0, dim_out: int | None = None, bias: bool = True) -> None:
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.ModuleList(
            [_ProjGelu(dim, inner, bias), nn.Identity(), nn.Linear(inner, dim_out or dim, bias=bias)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


def use_gelu_epilogue(model: nn.Module, on: bool = True) -> int:
    """Switch every GELU feed-forward of `model` to the fused product (`linear_gelu_tanh`) or back; returns
    how many. Opt-in: it moves bf16 numbers. Set it before compiling (a compiled block recompiles on change)."""
    layers = [module for module in model.modules() if isinstance(module, _ProjGelu)]
    for layer in layers:
        layer.epilogue = on
    return len(layers)
