"""FlashAttention-4 (the CuTe-DSL kernels of the `flash-attn-4` package) as an optional CUDA backend.

Why: on Hopper, PyTorch's SDPA picks cuDNN's fused attention for LTX-2's long video sequences
(≈540 TFLOP/s at 14,080 tokens); FlashAttention's Hopper kernels are reported faster. The package is
optional: where it is missing, or the inputs are outside what the kernel takes (a mask, an odd head size,
float32, the CPU), ditto uses SDPA as before.

The call is wrapped in a torch custom op so a regionally compiled block keeps one graph (fullgraph=True):
dynamo sees an opaque op with a known output shape instead of tracing into the kernel launcher.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def fa4_available() -> bool:
    """True when `flash_attn.cute` imports and a Hopper-or-newer GPU is present."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        return False
    try:
        import flash_attn.cute  # noqa: F401
    except Exception:  # noqa: BLE001 (any import failure means: not usable here)
        return False
    return True


def fa4_accepts(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """The inputs FlashAttention-4 takes: CUDA, half precision, no mask, head size 8..256 in steps of 8."""
    head_dim = q.shape[-1]
    return (
        mask is None
        and q.is_cuda
        and q.dtype in (torch.bfloat16, torch.float16)
        and q.shape[-2] == k.shape[-2]
        and head_dim % 8 == 0
        and 8 <= head_dim <= 256
    )


@torch.library.custom_op("ditto::fa4_attention", mutates_args=())
def fa4_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for [batch, seq, heads, head_dim] tensors (the kernel's own layout)."""
    from flash_attn.cute import flash_attn_func

    out = flash_attn_func(q.contiguous(), k.contiguous(), v.contiguous())
    return out[0] if isinstance(out, tuple) else out


@fa4_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return q.new_empty(*q.shape[:-1], v.shape[-1])
