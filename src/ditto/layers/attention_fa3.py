"""FlashAttention-3 (the Hopper kernels of Dao-AILab's `flash_attn_interface`) as an optional CUDA backend.

Why: on an H100/H200 the unmasked video self-attention is a third of LTX-2's FLOPs, and FA3's warp-
specialised, ping-pong kernels are the fastest published for head dim 128 (PyTorch's cuDNN path reaches
~576 TFLOP/s inside the model). No wheel exists for torch 2.11 + CUDA 13: `scripts/build_fa3.sh` builds the
forward kernels ditto calls on the GPU machine. Where it is missing, or the inputs are outside what was built
(a mask, another head size or dtype, not Hopper), ditto uses SDPA as before.

Takes [batch, seq, heads, head_dim] with channels contiguous: the projections' own layout, no copies.
Wrapped in a torch custom op so a regionally compiled block keeps one graph (fullgraph=True).

FP8 (`fa3_fp8_attention`, behind the opt-in attention="fp8"): FA3's e4m3 kernel, with one scale per sample
and head for each of q, k and v (FA3's descale layout). The quantization is torch ops outside the custom op,
so inside a compiled block inductor fuses the casts into the kernels that produce q, k and v.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Fa3Build:
    """What the installed FA3 was built with (scripts/build_fa3.sh builds only what ditto calls)."""

    head_dims: frozenset[int]
    dtypes: frozenset[torch.dtype]
    fp8: bool


# Read once by fa3_available() (outside any compiled graph); fa3_accepts only reads it, so dynamo sees a
# constant instead of tracing a cached import.
_BUILD: list[Fa3Build] = []


def _read_build() -> Fa3Build | None:
    try:
        import flash_attn_interface  # noqa: F401
        from flash_attn_config import CONFIG
    except Exception:  # noqa: BLE001 (any import failure means: not usable here)
        return None
    flags = CONFIG.get("build_flags", {})
    dims = frozenset(d for d in (64, 96, 128, 192, 256) if not flags.get(f"FLASHATTENTION_DISABLE_HDIM{d}"))
    dtypes = {torch.bfloat16} | ({torch.float16} if not flags.get("FLASHATTENTION_DISABLE_FP16") else set())
    return Fa3Build(dims, frozenset(dtypes), fp8=not flags.get("FLASHATTENTION_DISABLE_FP8"))


@functools.cache
def fa3_available() -> bool:
    """True on a Hopper GPU (FA3 is sm_90 only) where `flash_attn_interface` imports."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() != (9, 0):
        return False
    build = _read_build()
    if build is not None:
        _BUILD.append(build)
    return build is not None


def fa3_fp8_available() -> bool:
    """True where FA3 is usable and was built with its e4m3 kernels."""
    return fa3_available() and _BUILD[0].fp8


def fa3_accepts(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """No mask, CUDA, a head size and dtype the build holds, channels contiguous, as many K/V heads as Q."""
    built = _BUILD[0] if _BUILD else None
    return (
        built is not None
        and mask is None
        and q.is_cuda
        and q.dtype in built.dtypes
        and q.shape[-1] in built.head_dims
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


def fa3_fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """FA3's e4m3 kernel on q, k, v quantized with one scale per (sample, head); output in q's dtype."""
    (q8, q_scale), (k8, k_scale), (v8, v_scale) = (to_e4m3(t) for t in (q, k, v))
    return fa3_e4m3(q8, k8, v8, q_scale, k_scale, v_scale).to(q.dtype)


E4M3_MAX = 448.0  # the largest finite float8_e4m3fn


def to_e4m3(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """t [B, S, H, D] as e4m3 with its [B, H] float32 scales (amax / 448: the largest value maps to 448)."""
    scale = t.abs().amax(dim=(1, 3)).float().clamp(min=1e-12) / E4M3_MAX
    return (t.float() / scale[:, None, :, None]).to(torch.float8_e4m3fn), scale


@torch.library.custom_op("ditto::fa3_e4m3_attention", mutates_args=())
def fa3_e4m3(
    q8: torch.Tensor,
    k8: torch.Tensor,
    v8: torch.Tensor,
    q_scale: torch.Tensor,
    k_scale: torch.Tensor,
    v_scale: torch.Tensor,
) -> torch.Tensor:
    from flash_attn_interface import flash_attn_func

    out = flash_attn_func(q8, k8, v8, q_descale=q_scale, k_descale=k_scale, v_descale=v_scale)
    return out[0] if isinstance(out, tuple) else out


@fa3_e4m3.register_fake
def _(q8, k8, v8, q_scale, k_scale, v_scale):  # noqa: ANN001, ANN202
    return q8.new_empty(*q8.shape[:-1], v8.shape[-1], dtype=torch.bfloat16)
