"""The one attention function. Every model calls `attention`; backends and masks are decided here only.

Layout: q, k, v are [batch, seq, heads, head_dim] (the layout projections produce without a copy).
mask: None, a boolean keep-mask (True = attend) or an additive float mask, broadcastable to
[batch, heads, q_len, k_len].

Backends (CUDA only; the CPU path is plain SDPA): PyTorch's default SDPA order is flash (FA2),
memory-efficient, math, cuDNN. On Hopper, cuDNN's fused attention uses the chip's own matrix
instructions and is much faster than FA2 for the long video sequences, so ditto puts it first;
SDPA falls through to the next backend when one cannot take the inputs (e.g. a mask or head size).

Unmasked kernels (named first in the order, used for the unmasked calls they accept, SDPA for the rest):
"fa3" (FlashAttention-3's Hopper kernels, built by scripts/build_fa3.sh), "fa4" (FlashAttention-4, optional
package), "triton" (ditto's Triton kernel, bf16) and "fp8" (the same
kernel with FP8 products, or FA3's e4m3 kernel where built: opt-in, it moves numbers; `attention_triton.py`,
`attention_fa3.py`). `sdpa_layout="contiguous"`
hands SDPA dense [B, H, S, D] copies instead of the strided views (a layout cuDNN may prefer; measured in
benchmarks/gpu_speed.py).

Sequence parallelism (Ulysses) hooks in here too: a call given a `split` (the model asks its layout for
one, parallel/plan.py) holds only its rank's tokens; `split.attend` exchanges them for whole sequences of
some heads (parallel/ulysses.py), runs this module's kernel choice on them, and exchanges the outputs back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ditto.layers.attention_fa3 import (
    fa3_accepts,
    fa3_attention,
    fa3_available,
    fa3_fp8_attention,
    fa3_fp8_available,
)
from ditto.layers.attention_fa4 import fa4_accepts, fa4_attention, fa4_available
from ditto.layers.attention_triton import (
    fp8_attention,
    fp8_attention_available,
    triton_accepts,
    triton_attention,
    triton_available,
)

# The FP8 implementation as (accepts, kernel), resolved by _fp8_available() when the order is set, outside any
# compiled graph: a traced call must not reach the cached availability checks (dynamo traces through the
# cache, and FA3's first check records the build: a side effect that recompiled every call).
_fp8_impl: tuple[Callable, Callable] | None = None


def _fp8_available() -> bool:
    """FA3's e4m3 kernel where built (faster than ditto's Triton one: benchmarks/NOTES.md, 2026-12-03), else
    the Triton kernel; False where neither runs here."""
    global _fp8_impl
    if fa3_fp8_available():
        _fp8_impl = (fa3_accepts, fa3_fp8_attention)
    elif fp8_attention_available():
        _fp8_impl = (triton_accepts, fp8_attention)
    else:
        _fp8_impl = None
    return _fp8_impl is not None


def _fp8_accepts(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> bool:
    return _fp8_impl is not None and _fp8_impl[0](q, k, mask)


def _fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return _fp8_impl[1](q, k, v)


# Kernels for unmasked calls: name -> (usable here?, accepts(q, k, mask), kernel(q, k, v)).
UNMASKED_KERNELS = {
    "fa3": (fa3_available, fa3_accepts, fa3_attention),
    "fa4": (fa4_available, fa4_accepts, fa4_attention),
    "triton": (triton_available, triton_accepts, triton_attention),
    "fp8": (_fp8_available, _fp8_accepts, _fp8_attention),
}
SDPA_LAYOUTS = ("strided", "contiguous")
# SDPA's backends, in the order given after any unmasked kernel.
BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}
DEFAULT_CUDA_ORDER = ("cudnn", "flash", "efficient", "math")
# What an engine on a CUDA device asks for (use_fast_attention): FA3 where built, else FA4 where installed
# (FA4: -2.3 % on the LTX-2 forward at 1280x704x121 on an H100; FA3: benchmarks/NOTES.md, 2026-12-03).
FAST_CUDA_ORDER = ("fa3", "fa4", *DEFAULT_CUDA_ORDER)

# Priority order used on CUDA; None = PyTorch's own choice. Changed only through set_attention_backends.
_cuda_order: list[SDPBackend] | None = [BACKENDS[name] for name in DEFAULT_CUDA_ORDER]
_unmasked: str | None = None  # the unmasked kernel in use: named first in the order and usable here
_sdpa_contiguous = False


def set_attention_backends(order: Sequence[str] | None, sdpa_layout: str = "strided") -> None:
    """Choose the CUDA backends in priority order (an unmasked kernel first, then SDPA names from BACKENDS), or
    None for PyTorch's default. An unmasked kernel that cannot run here (package or GPU missing) is skipped.

    Compiled graphs read this when traced: set it before compiling (torch.compile recompiles on change).
    """
    global _cuda_order, _unmasked, _sdpa_contiguous
    if sdpa_layout not in SDPA_LAYOUTS:
        raise ValueError(f"sdpa_layout={sdpa_layout!r}: choose from {SDPA_LAYOUTS}")
    _unmasked, _sdpa_contiguous = None, sdpa_layout == "contiguous"
    if order is None:
        _cuda_order = None
        return
    unknown = [name for name in order if name not in BACKENDS and name not in UNMASKED_KERNELS]
    sdpa = [name for name in order if name in BACKENDS]
    if unknown or not sdpa:
        kernels = [name for name in order if name in UNMASKED_KERNELS] or ["the unmasked kernel"]
        raise ValueError(
            f"attention backends {list(order)!r}: unknown {unknown} or no SDPA backend after {kernels[0]}; "
            f"choose from {sorted(BACKENDS) + sorted(UNMASKED_KERNELS)}"
        )
    # The leading unmasked kernels are alternatives: the first one usable here is the one in use.
    leading = [name for name in order[: order.index(sdpa[0])] if name in UNMASKED_KERNELS]
    _unmasked = next((name for name in leading if UNMASKED_KERNELS[name][0]()), None)
    _cuda_order = [BACKENDS[name] for name in sdpa]


def use_fast_attention(device: torch.device, kernel: str | None = None) -> None:
    """On CUDA, take FAST_CUDA_ORDER, or `kernel` ("sdpa", "fa3", "triton", "fp8": EngineOptions.attention) before
    SDPA's order (resolved once here, outside any compiled graph); else nothing."""
    if device.type != "cuda":
        return
    if kernel is None:
        set_attention_backends(FAST_CUDA_ORDER)
    else:
        set_attention_backends(DEFAULT_CUDA_ORDER if kernel == "sdpa" else (kernel, *DEFAULT_CUDA_ORDER))


def attention_backends() -> list[str] | None:
    """The current CUDA priority order as names (None = PyTorch's default)."""
    if _cuda_order is None:
        return None
    names = {backend: name for name, backend in BACKENDS.items()}
    return [_unmasked] * (_unmasked is not None) + [names[backend] for backend in _cuda_order]


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    split: Any = None,
) -> torch.Tensor:
    """Scaled dot-product attention; returns [batch, q_len, heads, head_dim].

    split: this call's sequence-parallel split (`parallel.ulysses.AttentionSplit`), or None. With one, q/k/v
    hold this rank's tokens only and the mask covers the whole sequences."""
    if split is not None:
        return split.attend(q, k, v, mask, _attend)
    return _attend(q, k, v, mask)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The kernel call on whole sequences: the backend choice lives here and nowhere else."""
    if k.shape[2] != q.shape[2]:
        # Grouped-query attention: repeat K/V heads explicitly (what the official Gemma code does).
        repeat = q.shape[2] // k.shape[2]
        k = k.repeat_interleave(repeat, dim=2)
        v = v.repeat_interleave(repeat, dim=2)
    if mask is not None and mask.dtype != torch.bool and mask.dtype != q.dtype:
        mask = mask.to(q.dtype)
    if _unmasked is not None and UNMASKED_KERNELS[_unmasked][1](q, k, mask):
        return UNMASKED_KERNELS[_unmasked][2](q, k, v)
    # permute, not transpose: the same view, but compiled kernels are named after the op, and with diffusers'
    # op the kernels (and their autotuning cache entries) are the reference's own.
    q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
    if _sdpa_contiguous:
        q, k, v = (t.contiguous() for t in (q, k, v))
    if q.is_cuda and _cuda_order is not None:
        with sdpa_kernel(_cuda_order, set_priority=True):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.permute(0, 2, 1, 3)


def naive_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain softmax attention in float64, for tests: the definition `attention` must match."""
    q64, k64, v64 = (t.transpose(1, 2).double() for t in (q, k, v))
    scores = q64 @ k64.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = (
            scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.double()
        )
    return (scores.softmax(-1) @ v64).transpose(1, 2).to(q.dtype)
