"""Flash attention written in Triton, as optional CUDA backends of `layers/attention.py`: "triton" (bf16/fp16)
and "fp8" (e4m3 products, opt-in: it moves numbers).

Why both exist (benchmarks/NOTES.md, issue 24): on Hopper, PyTorch's cuDNN attention already runs at
FA3-class rates (~624 TFLOP/s at LTX-2's 14,080 video tokens on an H200), and a Triton kernel without warp
specialisation is not expected to beat it in bf16; "triton" is there to be measured, not assumed. FP8
attention has no kernel in PyTorch at all (SDPA takes no float8; FlashAttention-3's FP8 path needs a wheel
that does not exist for torch 2.11 + CUDA 13), and Hopper's FP8 tensor cores run twice the bf16 rate, so
"fp8" is the candidate that can win.

FP8 quantization (`quantize_fp8`) is written in torch ops outside the kernel so that, inside a compiled
block, inductor fuses it into the kernel that produces q and k (RMS norm + RoPE): per (token, head) scales
for Q and K (amax over the head's channels: one pass), one scale per (batch, head) for V, which is stored
transposed. The kernel wraps as torch custom ops, so a compiled block stays one graph.

Long calls are tuned once per head size and mode on first use (three block shapes, timed with CUDA events),
except while a CUDA graph is being recorded; short ones take one small tile shape.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
LOG2E = 1.4426950408889634
HEAD_DIMS = (16, 32, 64, 128, 256)  # powers of two: the kernel's tile spans the whole head


@dataclass(frozen=True)
class KernelConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


# Candidates for long sequences on Hopper (the tile shapes of Triton's fused-attention tutorial for head dim
# 64-128); a short one (LTX-2's 126 audio tokens on either side) takes SMALL untuned. The first of LONG is
# what runs untuned (a CPU tensor under the interpreter, a CUDA graph being recorded).
LONG = (
    KernelConfig(128, 128, 8, 2),
    KernelConfig(128, 128, 8, 3),
    KernelConfig(128, 64, 4, 3),
)
SMALL = KernelConfig(64, 64, 4, 2)
LONG_WORK = 1 << 24  # query x key pairs from which a call counts as long (14,080 x 1,024 and up)
_TUNED: dict[tuple, KernelConfig] = {}


@functools.cache
def triton_available() -> bool:
    """True when Triton imports and an Ampere-or-newer GPU is present."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return False
    try:
        import ditto.layers.triton_attention_kernel  # noqa: F401
    except Exception:  # noqa: BLE001 (any import failure means: not usable here)
        return False
    return True


def fp8_attention_available() -> bool:
    """FP8 tensor-core products need Hopper (sm90) or newer."""
    return triton_available() and torch.cuda.get_device_capability()[0] >= 9


def triton_accepts(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Unmasked half-precision CUDA calls with equal head counts and a power-of-two head size."""
    return (
        mask is None
        and q.is_cuda
        and q.dtype in (torch.bfloat16, torch.float16)
        and q.shape[-2] == k.shape[-2]
        and q.shape[-1] in HEAD_DIMS
    )


def quantize_fp8(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q8, q_scale, k8, k_scale, v8 transposed to [B, H, D, S], v_scale [B, H]); dequantize by multiplying."""

    def per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = x.float().abs().amax(-1).clamp(min=1e-12) / FP8_MAX  # [B, S, H]
        return (x.float() / scale.unsqueeze(-1)).to(FP8), scale

    q8, q_scale = per_token(q)
    k8, k_scale = per_token(k)
    v_scale = v.float().abs().amax(dim=(1, 3)).clamp(min=1e-12) / FP8_MAX  # [B, H]
    v8 = (v.float() / v_scale[:, None, :, None]).to(FP8).permute(0, 2, 3, 1).contiguous()
    return q8, q_scale, k8, k_scale, v8, v_scale


def launch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scales: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    out_dtype: torch.dtype,
    config: KernelConfig | None = None,
) -> torch.Tensor:
    """Run the kernel. q, k: [B, S, H, D] (any strides, channels contiguous); v: [B, S, H, D], or with
    `scales` (FP8: q, k per-token, v per-head) [B, H, D, S]. Returns [B, Sq, H, D] contiguous.
    config: a fixed block configuration (tests); None tunes per shape on CUDA."""
    from ditto.layers.triton_attention_kernel import attention_forward

    batch, sq, heads, dim = q.shape
    sk = k.shape[1]
    out = torch.empty(batch, sq, heads, dim, device=q.device, dtype=out_dtype)
    fp8 = scales is not None
    if fp8:
        q_scale, k_scale, v_scale = scales
        v_strides = (v.stride(0), v.stride(3), v.stride(1), v.stride(2))  # b, s, h, d of [B, H, D, S]
    else:
        q_scale = k_scale = v_scale = torch.ones(1, device=q.device)
        v_strides = (v.stride(0), v.stride(1), v.stride(2), v.stride(3))
    qs_strides = q_scale.stride() if fp8 else (0, 0, 0)
    ks_strides = k_scale.stride() if fp8 else (0, 0, 0)
    vs_strides = v_scale.stride() if fp8 else (0, 0)
    sm_scale_log2 = LOG2E / math.sqrt(dim)

    def run(cfg: KernelConfig) -> None:
        grid = (triton_cdiv(sq, cfg.block_m), batch * heads)
        attention_forward[grid](
            q, k, v, out, q_scale, k_scale, v_scale, sm_scale_log2,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            *v_strides, out.stride(0), out.stride(1), out.stride(2), *qs_strides, *ks_strides, *vs_strides,
            heads, sq, sk, sk - sk % cfg.block_n,
            HEAD_DIM=dim, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, FP8=fp8,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )  # fmt: skip

    if config is None:
        long = sq * sk >= LONG_WORK
        config = _choose(run, (dim, q.dtype, fp8, q.device)) if long else SMALL
    run(config)
    return out


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _choose(run, key: tuple) -> KernelConfig:
    """The fastest of LONG for this head size, element type and mode, timed once on the first long call
    (CUDA events; each candidate compiles once); the first of LONG where timing is not possible."""
    if key in _TUNED:
        return _TUNED[key]
    device = key[-1]
    if device.type != "cuda" or torch.cuda.is_current_stream_capturing():
        return LONG[0]
    times = {}
    for cfg in LONG:
        try:
            run(cfg)  # compiles on first use
        except Exception:  # noqa: BLE001 (a configuration this GPU cannot run, e.g. out of shared memory)
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(3):
            run(cfg)
        end.record()
        end.synchronize()
        times[cfg] = start.elapsed_time(end)
    if not times:
        raise RuntimeError(f"no Triton attention configuration runs for {key}")
    _TUNED[key] = min(times, key=times.get)
    return _TUNED[key]


@torch.library.custom_op("ditto::triton_attention", mutates_args=())
def triton_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for [batch, seq, heads, head_dim] tensors, bf16/fp16."""
    return launch(q, k, v, None, q.dtype)


@triton_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return q.new_empty(*q.shape[:-1], v.shape[-1])


@torch.library.custom_op("ditto::triton_attention_fp8", mutates_args=())
def triton_attention_fp8(
    q8: torch.Tensor,
    q_scale: torch.Tensor,
    k8: torch.Tensor,
    k_scale: torch.Tensor,
    v8: torch.Tensor,
    v_scale: torch.Tensor,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """The FP8 kernel on `quantize_fp8`'s outputs; the result in out_dtype, [batch, seq, heads, head_dim]."""
    return launch(q8, k8, v8, (q_scale, k_scale, v_scale), out_dtype)


@triton_attention_fp8.register_fake
def _(q8, q_scale, k8, k_scale, v8, v_scale, out_dtype):  # noqa: ANN001, ANN202 (the op's own schema)
    return torch.empty(*q8.shape[:-1], v8.shape[2], device=q8.device, dtype=out_dtype)


def fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention with FP8 products: quantize (torch ops, fusable), then the FP8 kernel."""
    return triton_attention_fp8(*quantize_fp8(q, k, v), q.dtype)
