"""FlashAttention-3 (the Hopper kernels of Dao-AILab's `flash_attn_interface`) as an optional CUDA backend.

Why: on an H100/H200 the unmasked video self-attention is a third of LTX-2's FLOPs, and FA3's warp-
specialised, ping-pong kernels are the fastest published for head dim 128 (PyTorch's cuDNN path reaches
~576 TFLOP/s inside the model). No wheel exists for torch 2.11 + CUDA 13: `scripts/build_fa3.sh` builds the
forward kernels ditto calls on the GPU machine. Where it is missing, or the inputs are outside what was built
(a mask, another head size or dtype, not Hopper), ditto uses SDPA as before.

Takes [batch, seq, heads, head_dim] with channels contiguous: the projections' own layout, no copies.
Wrapped in a torch custom op so a regionally compiled block keeps one graph (fullgraph=True).
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def _built() -> tuple[frozenset[int], frozenset[torch.dtype]] | None:
    """(head dims, dtypes) the installed FA3 was built for, or None where it does not import here."""
    try:
        import flash_attn_interface  # noqa: F401
        from flash_attn_config import CONFIG
    except Exception:  # noqa: BLE001 (any import failure means: not usable here)
        return None
    flags = CONFIG.get("build_flags", {})
    dims = frozenset(d for d in (64, 96, 128, 192, 256) if not flags.get(f"FLASHATTENTION_DISABLE_HDIM{d}"))
    dtypes = {torch.bfloat16}
    if not flags.get("FLASHATTENTION_DISABLE_FP16"):
        dtypes.add(torch.float16)
    return dims, frozenset(dtypes)


@functools.cache
def fa3_available() -> bool:
    """True on a Hopper GPU (FA3 is sm_90 only) where `flash_attn_interface` imports."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0):
        return False
    return _built() is not None


def fa3_accepts(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """No mask, CUDA, a head size and dtype the build holds, channels contiguous, as many K/V heads as Q."""
    built = _built()
    return (
        built is not None
        and mask is None
        and q.is_cuda
        and q.dtype in built[1]
        and q.shape[-1] in built[0]
        and q.shape[-2] == k.shape[-2]
        and q.stride(-1) == 1
        and k.stride(-1) == 1
    )


@torch.library.custom_op("ditto::fa3_attention", mutates_args=())
def fa3_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for [batch, seq, heads, head_dim] tensors (the kernel's own layout)."""
    from flash_attn_interface import flash_attn_func

    out = flash_attn_func(q, k, v.contiguous() if v.stride(-1) != 1 else v)
    return out[0] if isinstance(out, tuple) else out


@fa3_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return q.new_empty(*q.shape[:-1], v.shape[-1])
