"""FP8 matrix products for the transformer blocks (opt-in: `quantization="fp8"`, `--quantization fp8`).

Hopper and later GPUs multiply float8_e4m3 matrices at about twice the bf16 rate. Each quantized Linear
keeps its weight in FP8 with one scale per output channel (computed once, at quantization), and
quantizes its input per token at run time (dynamic: no calibration file), then calls
`torch._scaled_mm`, which scales the float32 accumulator back and writes bf16. Under torch.compile the
input's amax, scale and cast fuse into one kernel with whatever produced the input.

What is quantized follows ltx-core's `fp8-scaled-mm` policy: only Linears inside the repeated blocks;
the patch embedders, timestep/caption embedders, modulation layers and output projection stay in the
model's dtype, and for LTX-2 so do the first block and the last five (the official exclusion list).
ditto's scales are finer than the official per-tensor ones (per channel / per token), so they lose less.

This changes the numbers: FP8 keeps 3 mantissa bits, so outputs move by a few percent against bf16
(measured figures in benchmarks/RESULTS.md). It is a speed option, never a default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max
SCALINGS = ("rowwise", "tensorwise")
# Linears fed by the timestep embedding (one row per sample): FP8 buys nothing there and the
# modulation they produce scales every token, so they stay in the model's dtype (as ltx-core keeps adaLN).
NOT_QUANTIZED_NAMES = ("_mod", "modulation", "norm")


def _scale_for(amax: torch.Tensor) -> torch.Tensor:
    # The smallest positive float32 keeps an all-zero row from dividing by zero.
    return (amax.float() / FP8_MAX).clamp_min(torch.finfo(torch.float32).tiny)


def quantize_tensor(x: torch.Tensor, scaling: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(FP8 tensor, float32 scale) with x ≈ fp8 * scale; scale per row [rows, 1] or one for the tensor."""
    amax = x.abs().amax(dim=-1, keepdim=True) if scaling == "rowwise" else x.abs().amax()
    scale = _scale_for(amax)
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


class Fp8Linear(nn.Module):
    """A Linear whose product runs in FP8: y = (x_q W_q^T) * s_x * s_w + b."""

    def __init__(self, linear: nn.Linear, scaling: str = "rowwise") -> None:
        super().__init__()
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
        self.scaling = scaling
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            weight, scale = quantize_tensor(linear.weight.detach(), scaling)
        self.register_buffer("weight_fp8", weight)  # [out, in]; passed transposed (column-major) below
        # _scaled_mm wants the second operand's scales as a [1, out] row (rowwise) or a scalar.
        self.register_buffer("weight_scale", scale.reshape(1, -1) if scaling == "rowwise" else scale)
        self.bias = linear.bias
        self.out_dtype = linear.weight.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        x_fp8, x_scale = quantize_tensor(rows, self.scaling)
        out = torch._scaled_mm(
            x_fp8,
            self.weight_fp8.t(),
            scale_a=x_scale,
            scale_b=self.weight_scale,
            bias=self.bias,
            out_dtype=self.out_dtype,
        )
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scaling={self.scaling}"


@dataclass
class Fp8Swap:
    """Where each quantized Linear was, so `restore` can put the original back."""

    parent: nn.Module
    name: str
    original: nn.Linear


def block_lists(model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """The model's repeated blocks: every child ModuleList whose name ends in "blocks"."""
    return [
        (name, child)
        for name, child in model.named_children()
        if name.endswith("blocks") and isinstance(child, nn.ModuleList)
    ]


def quantizable(name: str, linear: nn.Linear) -> bool:
    """FP8 products need both sizes divisible by 16; timestep-fed layers are left alone."""
    if any(part in name for part in NOT_QUANTIZED_NAMES):
        return False
    return linear.in_features % 16 == 0 and linear.out_features % 16 == 0


def kept_blocks(count: int, keep_first: int, keep_last: int) -> set[int]:
    return set(range(min(keep_first, count))) | set(range(max(count - keep_last, 0), count))


def quantize_fp8(
    model: nn.Module,
    scaling: str = "rowwise",
    keep_first: int = 0,
    keep_last: int = 0,
    keep_originals: bool = True,
) -> list[Fp8Swap]:
    """Replace the block Linears of `model` by `Fp8Linear`s in place; returns the swaps for `restore`.

    keep_first/keep_last: blocks at either end that stay in the model's dtype (per block list).
    keep_originals=False frees each bf16 weight as soon as
    its FP8 copy exists (nothing to restore; peak memory stays one layer above the model's) and returns [].
    """
    swaps: list[Fp8Swap] = []
    for _, blocks in block_lists(model):
        keep = kept_blocks(len(blocks), keep_first, keep_last)
        for index, block in enumerate(blocks):
            if index in keep:
                continue
            for name, module in list(block.named_modules()):
                if isinstance(module, nn.Linear) and quantizable(name, module):
                    parent_name, _, attr = name.rpartition(".")
                    parent = block.get_submodule(parent_name) if parent_name else block
                    setattr(parent, attr, Fp8Linear(module, scaling))
                    if keep_originals:
                        swaps.append(Fp8Swap(parent, attr, module))
    return swaps


def restore(swaps: list[Fp8Swap]) -> None:
    """Put the original Linears back (exact: their weights were never touched)."""
    for swap in swaps:
        setattr(swap.parent, swap.name, swap.original)


def fp8_supported(device: torch.device) -> bool:
    """FP8 tensor cores: compute capability 8.9 (Ada) or newer; the CPU runs _scaled_mm too (slowly)."""
    if device.type != "cuda":
        return device.type == "cpu"
    return torch.cuda.get_device_capability(device) >= (8, 9)


def quantize_transformer(
    model: nn.Module, scaling: str = "rowwise", keep_originals: bool = True
) -> list[Fp8Swap]:
    """`quantize_fp8` with the model's own exclusions (`fp8_keep_blocks = (first, last)`, LTX-2: the
    official (1, 5)); models without one quantize every block."""
    keep_first, keep_last = getattr(model, "fp8_keep_blocks", (0, 0))
    return quantize_fp8(
        model, scaling, keep_first=keep_first, keep_last=keep_last, keep_originals=keep_originals
    )
