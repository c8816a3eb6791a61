"""The Triton kernel behind `ditto.layers.qk_norm_rope` (imports triton: CUDA installs, or the CPU interpreter
in tests; the wrapper module imports this one lazily).

One program handles one token row (b, s): it loads q's row (and k's, when HAS_K), computes the RMS statistic
over all of the row's channels in float32, applies the norm weight, rounds to the tensor's element type
(where `nn.RMSNorm` returns), rotates each channel pair with that token's cos/sin (loaded once, for q and k
both) in float32, and stores in the element type (where `apply_rope` returns). The same operations, in the
same order, as the eager norm then rope; only the sum of squares is a tree rather than a sequential sum.

A row is held as a [G, P] grid of channel pairs (G = heads, P = head_dim / 2): pair (g, p) reads table entry
g * P + p, for both layouts of `layers/rope.py`:
- interleaved: channels g 2P + 2p and g 2P + 2p + 1. Each head is loaded whole ([G, 2P], contiguous along
  the channels, so the loads vectorise to 16 bytes) and reshaped to [G, P, 2], whose last axis splits into
  the pair's halves (within a thread's registers: no data moves); the store joins them back.
- split: channels g 2P + p and g 2P + P + p: two [G, P] tiles, each contiguous along p.
Each group is one attention head, so a pair's output address is its head's stride plus its place in the head:
that is how the kernel writes [B, S, H*D] or [B, H, S, D] from the same code. Padded lanes (G or P not a
power of two) are masked: they read 0 (adding nothing to the sum of squares) and are not stored.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _load_pairs(
    base, g, p, c, G: tl.constexpr, HALF: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_P: tl.constexpr,
    SPLIT: tl.constexpr,
):  # fmt: skip
    """The row's channel pairs as two float32 [BLOCK_G, BLOCK_P] tensors (padded lanes 0). g: [BLOCK_G, 1]
    heads, p: [1, BLOCK_P] pairs, c: [1, 2 BLOCK_P] channels of a head."""
    head = base + g * (2 * HALF)
    if SPLIT:
        mask = (g < G) & (p < HALF)
        a = tl.load(head + p, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(head + HALF + p, mask=mask, other=0.0).to(tl.float32)
        return a, b
    whole = tl.load(head + c, mask=(g < G) & (c < 2 * HALF), other=0.0).to(tl.float32)
    return tl.split(tl.reshape(whole, [BLOCK_G, BLOCK_P, 2]))


@triton.jit
def _store_pairs(
    base, g, p, c, a, b, stride_h, G: tl.constexpr, HALF: tl.constexpr, BLOCK_G: tl.constexpr,
    BLOCK_P: tl.constexpr, SPLIT: tl.constexpr,
):  # fmt: skip
    """Write pair (a, b) of head g at the head's stride: channels p and HALF + p (split), or 2p and 2p + 1."""
    head = base + g * stride_h
    if SPLIT:
        mask = (g < G) & (p < HALF)
        tl.store(head + p, a.to(base.dtype.element_ty), mask=mask)
        tl.store(head + HALF + p, b.to(base.dtype.element_ty), mask=mask)
    else:
        whole = tl.reshape(tl.join(a, b), [BLOCK_G, 2 * BLOCK_P]).to(base.dtype.element_ty)
        tl.store(head + c, whole, mask=(g < G) & (c < 2 * HALF))


@triton.jit
def _norm(a, b, wa, wb, eps, INNER: tl.constexpr):
    """nn.RMSNorm of the whole row (a, b hold all of it), in float32 and in its order: x * rsqrt(mean(x^2) + eps)
    * w. The caller rounds the result to the element type, where nn.RMSNorm returns."""
    squares = tl.sum(tl.sum(a * a + b * b, axis=1), axis=0)
    rstd = tl.math.rsqrt(squares / INNER + eps)
    return a * rstd * wa, b * rstd * wb


@triton.jit
def _rounded_rotation(a, b, cos, sin, ROUND_TO: tl.constexpr):
    """apply_rope on the normed pair: round it to the element type (the plain path's norm output), then rotate
    in float32 (out = a c - b s, b c + a s, as `rotated = (-odd, even)` gives)."""
    a = a.to(ROUND_TO).to(tl.float32)
    b = b.to(ROUND_TO).to(tl.float32)
    return a * cos - b * sin, b * cos + a * sin


@triton.jit
def qk_norm_rope(
    Q, K, WQ, WK, COS, SIN, QO, KO, eps_q, eps_k,
    stride_qb, stride_qs, stride_kb, stride_ks, stride_cb, stride_cs, stride_sb, stride_ss,
    stride_ob, stride_os, stride_oh, stride_kob, stride_kos, stride_koh,
    G: tl.constexpr, HALF: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_P: tl.constexpr,
    SPLIT: tl.constexpr, HAS_K: tl.constexpr,
):  # fmt: skip
    """Norm and rotate row (b = program 1, s = program 0) of Q (and K, with the same tables, when HAS_K).

    Q, K: [B, S, G * 2 HALF] with unit channel stride; COS, SIN: [B or 1, S, G * HALF] float32 (batch stride 0
    when shared); QO, KO: written at b, s, head g with the given strides (unit stride within a head).
    """
    s = tl.program_id(0)
    bi = tl.program_id(1)
    g = tl.arange(0, BLOCK_G)[:, None]
    p = tl.arange(0, BLOCK_P)[None, :]
    c = tl.arange(0, 2 * BLOCK_P)[None, :]
    pairs = (g < G) & (p < HALF)
    # The tables once for both tensors: this is the read the fusion saves.
    cos = tl.load(COS + bi * stride_cb + s * stride_cs + g * HALF + p, mask=pairs, other=0.0)
    sin = tl.load(SIN + bi * stride_sb + s * stride_ss + g * HALF + p, mask=pairs, other=0.0)
    inner: tl.constexpr = G * 2 * HALF

    a, b = _load_pairs(Q + bi * stride_qb + s * stride_qs, g, p, c, G, HALF, BLOCK_G, BLOCK_P, SPLIT)
    wa, wb = _load_pairs(WQ, g, p, c, G, HALF, BLOCK_G, BLOCK_P, SPLIT)
    a, b = _norm(a, b, wa, wb, eps_q, inner)
    a, b = _rounded_rotation(a, b, cos, sin, Q.dtype.element_ty)
    _store_pairs(
        QO + bi * stride_ob + s * stride_os, g, p, c, a, b, stride_oh, G, HALF, BLOCK_G, BLOCK_P, SPLIT
    )
    if HAS_K:
        a, b = _load_pairs(K + bi * stride_kb + s * stride_ks, g, p, c, G, HALF, BLOCK_G, BLOCK_P, SPLIT)
        wa, wb = _load_pairs(WK, g, p, c, G, HALF, BLOCK_G, BLOCK_P, SPLIT)
        a, b = _norm(a, b, wa, wb, eps_k, inner)
        a, b = _rounded_rotation(a, b, cos, sin, K.dtype.element_ty)
        out = KO + bi * stride_kob + s * stride_kos
        _store_pairs(out, g, p, c, a, b, stride_koh, G, HALF, BLOCK_G, BLOCK_P, SPLIT)
