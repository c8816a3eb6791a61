"""The Triton flash-attention forward kernel behind `ditto.layers.attention_triton` (imports triton: CUDA
installs only; the wrapper module imports this one lazily).

One program computes BLOCK_M query rows of one (batch, head) against every key, with the online softmax
(running max m, running sum l, rescaled accumulator). Inputs keep the projections' [B, S, H, D] layout:
every tensor comes with its own strides, so the callers' permuted views are read without a copy.

FP8 (e4m3) mode: Q and K carry one scale per (token, head) and V one per (batch, head); V comes transposed
([B, H, D, S]), since Hopper's FP8 tensor-core product wants both operands contiguous along the reduced
axis. The probabilities are multiplied by P_SCALE before their e4m3 cast so that small ones stay
representable, and divided out at the end; the row sums use the unrounded probabilities.
"""

from __future__ import annotations

import triton
import triton.language as tl

# The probabilities' FP8 scale is the literal 256.0 below: a power of two (exact to divide out), and
# p * 256 <= 256 < 448, e4m3's largest value; probabilities down to 2^-17 stay representable (subnormals).


@triton.jit
def _tile(
    acc, l_i, m_i, q, q_row_scale, k_ptrs, ks_ptrs, v_ptrs, start_n, SK,
    offs_n, stride_ks, stride_vs, stride_kss,
    FP8: tl.constexpr, MASKED: tl.constexpr,
):  # fmt: skip
    """One BLOCK_N tile of keys: scores, online-softmax update, P @ V into acc."""
    cols = start_n + offs_n
    if MASKED:
        k = tl.load(k_ptrs + start_n * stride_ks, mask=cols[None, :] < SK, other=0.0)
        v = tl.load(v_ptrs + start_n * stride_vs, mask=cols[:, None] < SK, other=0.0)
    else:
        k = tl.load(k_ptrs + start_n * stride_ks)
        v = tl.load(v_ptrs + start_n * stride_vs)
    s = tl.dot(q, k)  # [BLOCK_M, BLOCK_N] float32, log2 units once scaled
    if FP8:
        if MASKED:
            k_scale = tl.load(ks_ptrs + start_n * stride_kss, mask=cols < SK, other=0.0)
        else:
            k_scale = tl.load(ks_ptrs + start_n * stride_kss)
        s = s * q_row_scale[:, None] * k_scale[None, :]
    else:
        s = s * q_row_scale[:, None]
    if MASKED:
        s = tl.where(cols[None, :] < SK, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    p = tl.math.exp2(s - m_new[:, None])
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if FP8:
        acc = tl.dot((p * 256.0).to(v.dtype), v, acc)
    else:
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, l_i, m_new


# Sequence lengths and the scale are not specialised on (one binary serves every length); strides are.
@triton.jit(do_not_specialize=["sm_scale_log2", "H", "SQ", "SK", "SK_FULL"])
def attention_forward(
    Q, K, V, Out, QS, KS, VS, sm_scale_log2,
    stride_qb, stride_qs, stride_qh, stride_kb, stride_ks, stride_kh,
    stride_vb, stride_vs, stride_vh, stride_vd, stride_ob, stride_os, stride_oh,
    stride_qsb, stride_qss, stride_qsh, stride_ksb, stride_kss, stride_ksh, stride_vsb, stride_vsh,
    H, SQ, SK, SK_FULL,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, FP8: tl.constexpr,
):  # fmt: skip
    """softmax(Q K^T * scale) V for one (query block, batch * head). SK_FULL: keys in whole BLOCK_N tiles.

    FP8: QS and KS [B, S, H] are per-token scales, VS [B, H] per-head scales (dequantize by multiplying);
    otherwise they are unused and sm_scale_log2 is the whole score scale.
    """
    start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < SQ

    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs + offs_d[None, :]
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)
    if FP8:
        q_scale = tl.load(QS + b * stride_qsb + h * stride_qsh + offs_m * stride_qss, mask=row_ok, other=0.0)
        q_row_scale = q_scale * sm_scale_log2
    else:
        q_row_scale = tl.full([BLOCK_M], 1.0, tl.float32) * sm_scale_log2
    # K^T tile [HEAD_DIM, BLOCK_N] and V tile [BLOCK_N, HEAD_DIM] at key offset 0.
    k_ptrs = K + b * stride_kb + h * stride_kh + offs_n[None, :] * stride_ks + offs_d[:, None]
    v_ptrs = V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vs + offs_d[None, :] * stride_vd
    ks_ptrs = KS + b * stride_ksb + h * stride_ksh + offs_n * stride_kss

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    for start_n in range(0, SK_FULL, BLOCK_N):
        acc, l_i, m_i = _tile(
            acc, l_i, m_i, q, q_row_scale, k_ptrs, ks_ptrs, v_ptrs, start_n, SK,
            offs_n, stride_ks, stride_vs, stride_kss, FP8, False,
        )  # fmt: skip
    if SK_FULL < SK:
        acc, l_i, m_i = _tile(
            acc, l_i, m_i, q, q_row_scale, k_ptrs, ks_ptrs, v_ptrs, SK_FULL, SK,
            offs_n, stride_ks, stride_vs, stride_kss, FP8, True,
        )  # fmt: skip
    if FP8:
        acc = acc * (tl.load(VS + b * stride_vsb + h * stride_vsh) / 256.0)
    out = acc / l_i[:, None]
    o_ptrs = Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_os + offs_d[None, :]
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None])
