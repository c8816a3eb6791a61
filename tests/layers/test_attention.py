"""ditto.layers.attention.attention against the float64 definition naive_attention."""

from __future__ import annotations

import pytest
import torch

from ditto.layers.attention import attention, naive_attention

TOLERANCE = 1e-5


def _qkv(batch: int, q_len: int, k_len: int, heads: int, kv_heads: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, q_len, heads, dim, generator=g)
    k = torch.randn(batch, k_len, kv_heads, dim, generator=g)
    v = torch.randn(batch, k_len, kv_heads, dim, generator=g)
    return q, k, v


def _check(name: str, got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape, f"{name}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    measured = (got - expected).abs().max().item()
    assert measured <= TOLERANCE, f"{name}: max abs diff {measured:.3e} > allowed {TOLERANCE:.1e}"


@pytest.mark.parametrize("q_len,k_len", [(5, 5), (4, 9)])
def test_unmasked(q_len: int, k_len: int) -> None:
    q, k, v = _qkv(2, q_len, k_len, 3, 3, 8)
    _check("unmasked", attention(q, k, v), naive_attention(q, k, v))


def test_bool_keep_mask_per_sample() -> None:
    q, k, v = _qkv(2, 4, 6, 2, 2, 8)
    keep = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    keep[1, ..., :3] = False  # left-padded second sample
    out = attention(q, k, v, keep)
    _check("bool mask", out, naive_attention(q, k, v, keep))
    # A dropped key must not matter: changing it leaves the output unchanged.
    k2, v2 = k.clone(), v.clone()
    k2[1, :3], v2[1, :3] = 100.0, -100.0
    _check("bool mask ignores dropped keys", attention(q, k2, v2, keep), out)


def test_bool_mask_per_query() -> None:
    q, k, v = _qkv(1, 5, 5, 2, 2, 4)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()[None, None]
    _check("causal bool mask", attention(q, k, v, causal), naive_attention(q, k, v, causal))


def test_additive_mask() -> None:
    q, k, v = _qkv(2, 3, 7, 2, 2, 8)
    bias = torch.zeros(2, 1, 1, 7)
    bias[0, ..., -2:] = -10000.0
    bias[1, ..., 0] = -1.5
    _check("additive mask", attention(q, k, v, bias), naive_attention(q, k, v, bias))


@pytest.mark.parametrize("masked", [False, True])
def test_grouped_query_attention(masked: bool) -> None:
    q, k, v = _qkv(2, 4, 6, 8, 2, 8)
    keep = None
    if masked:
        keep = torch.ones(2, 1, 1, 6, dtype=torch.bool)
        keep[0, ..., 4:] = False
    # Reference: each K/V head serves heads // kv_heads consecutive query heads.
    expected = naive_attention(q, k.repeat_interleave(4, dim=2), v.repeat_interleave(4, dim=2), keep)
    _check("gqa", attention(q, k, v, keep), expected)


def test_float64_inputs_keep_dtype() -> None:
    q, k, v = (t.double() for t in _qkv(1, 3, 3, 2, 2, 4))
    out = attention(q, k, v)
    assert out.dtype == torch.float64
    _check("float64", out, naive_attention(q, k, v))


def test_backend_order_names_and_errors() -> None:
    from ditto.layers.attention import attention_backends, set_attention_backends

    before = attention_backends()
    try:
        set_attention_backends(["flash", "math"])
        assert attention_backends() == ["flash", "math"]
        # fa4 needs its package and a Hopper GPU; without them it drops out of the order silently.
        set_attention_backends(["fa4", "cudnn"])
        assert attention_backends() in (["cudnn"], ["fa4", "cudnn"])
        with pytest.raises(ValueError, match="unknown \\['fast'\\]"):
            set_attention_backends(["fast"])
        with pytest.raises(ValueError, match="no SDPA backend after fa4"):
            set_attention_backends(["fa4"])
    finally:
        set_attention_backends(before)


def test_cpu_attention_ignores_cuda_backend_choice() -> None:
    from ditto.layers.attention import attention, attention_backends, set_attention_backends

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 2, 8, generator=g) for _ in range(3))
    before = attention_backends()
    try:
        set_attention_backends(["fa4", "math"])
        got = attention(q, k, v)
    finally:
        set_attention_backends(before)
    assert (got - naive_attention(q, k, v)).abs().max() < 1e-6


def test_leading_unmasked_kernels_are_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    """("fa3", "fa4", SDPA...): the first unmasked kernel usable here is used; none usable means SDPA alone."""
    from ditto.layers import attention as attn

    def kernels(usable: set[str]) -> dict:
        return {
            name: (lambda n=name: n in usable, *entry[1:]) for name, entry in attn.UNMASKED_KERNELS.items()
        }

    before = attn.attention_backends()
    try:
        for usable, expected in (({"fa3", "fa4"}, "fa3"), ({"fa4"}, "fa4"), (set(), None)):
            monkeypatch.setattr(attn, "UNMASKED_KERNELS", kernels(usable))
            attn.set_attention_backends(attn.FAST_CUDA_ORDER)
            assert attn.attention_backends() == [expected] * (expected is not None) + list(
                attn.DEFAULT_CUDA_ORDER
            )
    finally:
        attn.set_attention_backends(before)


def test_fa3_declines_what_it_was_not_built_for() -> None:
    """Without FlashAttention-3 (this machine), or for a mask, the fa3 backend declines: SDPA runs instead."""
    from ditto.layers.attention_fa3 import fa3_accepts, fa3_available

    q, k, _ = _qkv(1, 4, 4, 2, 2, 128)
    assert not fa3_available()  # CPU only: FA3 is for Hopper GPUs
    assert not fa3_accepts(q, k, None)
    assert not fa3_accepts(q, k, torch.ones(1, 1, 4, 4, dtype=torch.bool))


# e4m3 keeps 3 mantissa bits: N(0, 1) values round with ~2.7e-2 relative L2 (measured 2.64e-2 float32,
# 2.68e-2 bf16); 1.5x margin for other seeds. Per head, whatever the head's magnitude (one scale per head).
E4M3_ROUND_TRIP = 4e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fa3_fp8_quantization_scales_each_sample_and_head(dtype: torch.dtype) -> None:
    from ditto.layers.attention_fa3 import E4M3_MAX, to_e4m3

    g = torch.Generator().manual_seed(0)
    magnitudes = torch.tensor([0.1, 1.0, 30.0]).view(1, 1, 3, 1)  # heads of very different sizes
    t = (torch.randn(2, 64, 3, 128, generator=g) * magnitudes).to(dtype)
    quantized, scale = to_e4m3(t)
    assert quantized.dtype == torch.float8_e4m3fn and scale.shape == (2, 3) and scale.dtype == torch.float32
    assert quantized.float().abs().amax(dim=(1, 3)).eq(E4M3_MAX).all()  # each (sample, head) uses the range
    restored = quantized.float() * scale[:, None, :, None]
    for head in range(3):
        original = t[:, :, head].float()
        error = (restored[:, :, head] - original).norm() / original.norm()
        assert error <= E4M3_ROUND_TRIP, (head, error.item())
