"""RoPE helpers against float64 formulas written out here, independently of the implementation."""

from __future__ import annotations

import math

import pytest
import torch

from ditto.layers.rope import apply_interleaved_rope, apply_split_rope, power_frequencies, rope_tables

THETA = 10000.0


def _freqs_float64(n: int) -> torch.Tensor:
    # theta ** (i / (n - 1)) * pi / 2, i = 0..n-1, all in double precision.
    i = torch.arange(n, dtype=torch.float64)
    return THETA ** (i / (n - 1)) * math.pi / 2


@pytest.mark.parametrize("n", [4, 16, 21, 64, 341, 1024])
def test_frequencies_are_float64_maths_rounded_once(n: int) -> None:
    got = power_frequencies(THETA, n)
    assert got.dtype == torch.float32
    expected = _freqs_float64(n).to(torch.float32)
    # One rounding of the exact value: equal to float64-then-round up to at most one float32 ulp.
    ulp = torch.finfo(torch.float32).eps * expected.abs()
    assert bool(((got - expected).abs() <= ulp).all()), f"n={n}: {(got - expected).abs().max().item():.3e}"


def test_float64_grid_differs_from_float32_grid() -> None:
    """The reason for double precision: the float32 path lands on other float32 values."""
    a, b = power_frequencies(THETA, 1024), power_frequencies(THETA, 1024, double_precision=False)
    assert int((a != b).sum()) > 0
    ref = _freqs_float64(1024)
    assert (a.double() - ref).abs().max() < (b.double() - ref).abs().max()


def test_frequencies_are_cached() -> None:
    assert power_frequencies(THETA, 32) is power_frequencies(THETA, 32)


def _expected_flat_angles(fractions: torch.Tensor, dim: int) -> torch.Tensor:
    """[B, S, P] -> [B, S, F * P] float64 angles, frequency-major: index f * P + p."""
    b, s, p = fractions.shape
    n = dim // (2 * p)
    freqs = power_frequencies(THETA, n).double()  # the stored (float32) frequencies, widened
    out = torch.empty(b, s, n * p, dtype=torch.float64)
    for f in range(n):
        for axis in range(p):
            out[:, :, f * p + axis] = (2 * fractions[:, :, axis].double() - 1) * freqs[f]
    return out


def _allowed(angles: torch.Tensor) -> torch.Tensor:
    # The tables are computed from float32 angles (as the official code): half an ulp of the angle,
    # plus float32 rounding of cos/sin themselves.
    return angles.abs() * torch.finfo(torch.float32).eps + 2e-7


@pytest.mark.parametrize("dim,axes", [(96, 3), (100, 3), (64, 1), (40, 3)])
def test_interleaved_tables(dim: int, axes: int) -> None:
    g = torch.Generator().manual_seed(0)
    fractions = torch.rand(2, 11, axes, generator=g)
    cos, sin = rope_tables(fractions, dim, THETA, "interleaved", num_heads=1)
    angles = _expected_flat_angles(fractions, dim).repeat_interleave(2, dim=-1)
    pad = dim - angles.shape[-1]
    assert cos.shape == (2, 11, dim) and pad == dim % (2 * axes)
    # Leading pad channels do not rotate.
    assert bool((cos[..., :pad] == 1).all()) and bool((sin[..., :pad] == 0).all())
    tol = _allowed(angles)
    assert bool(((cos[..., pad:].double() - angles.cos()).abs() <= tol).all())
    assert bool(((sin[..., pad:].double() - angles.sin()).abs() <= tol).all())


@pytest.mark.parametrize("dim,axes,heads", [(96, 3, 2), (128, 3, 4), (64, 1, 2)])
def test_split_tables(dim: int, axes: int, heads: int) -> None:
    g = torch.Generator().manual_seed(1)
    fractions = torch.rand(2, 7, axes, generator=g)
    cos, sin = rope_tables(fractions, dim, THETA, "split", num_heads=heads)
    assert cos.shape == (2, 7, heads, dim // (2 * heads))
    angles = _expected_flat_angles(fractions, dim)
    pad = dim // 2 - angles.shape[-1]
    ones, zeros = torch.ones(2, 7, pad, dtype=torch.float64), torch.zeros(2, 7, pad, dtype=torch.float64)
    exp_cos = torch.cat([ones, angles.cos()], dim=-1).view(2, 7, heads, -1)
    exp_sin = torch.cat([zeros, angles.sin()], dim=-1).view(2, 7, heads, -1)
    tol = _allowed(torch.cat([zeros, angles], dim=-1)).view(2, 7, heads, -1)
    assert bool(((cos.double() - exp_cos).abs() <= tol).all())
    assert bool(((sin.double() - exp_sin).abs() <= tol).all())


def test_interleaved_rotation_is_complex_multiplication() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 12, generator=g)
    angles = torch.randn(2, 5, 6, generator=g, dtype=torch.float64)
    cos = angles.cos().repeat_interleave(2, -1).float()
    sin = angles.sin().repeat_interleave(2, -1).float()
    z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double()) * torch.exp(1j * angles)
    expected = torch.stack([z.real, z.imag], dim=-1).flatten(-2)
    out = apply_interleaved_rope(x, cos, sin)
    assert out.dtype == x.dtype
    assert (out.double() - expected).abs().max().item() <= 1e-5


def test_split_rotation_pairs_halves_within_each_rope_head() -> None:
    g = torch.Generator().manual_seed(3)
    heads, half = 2, 4
    x = torch.randn(2, 5, heads * 2 * half, generator=g)
    angles = torch.randn(2, 5, heads, half, generator=g, dtype=torch.float64)
    per_head = x.double().view(2, 5, heads, 2, half)
    z = torch.complex(per_head[..., 0, :], per_head[..., 1, :]) * torch.exp(1j * angles)
    expected = torch.stack([z.real, z.imag], dim=-2).reshape(2, 5, -1)
    out = apply_split_rope(x, angles.cos().float(), angles.sin().float())
    assert (out.double() - expected).abs().max().item() <= 1e-5
    # The same rotation applies to the [B, S, heads, head_dim] layout.
    out4 = apply_split_rope(x.view(2, 5, heads, -1), angles.cos().float(), angles.sin().float())
    assert torch.equal(out4.reshape(2, 5, -1), out)


def test_rotation_keeps_norms_and_zero_angle_is_identity() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 3, 16, generator=g)
    fractions = torch.full((1, 3, 1), 0.5)  # 2 * 0.5 - 1 = 0: no rotation
    for rope_type, heads in (("interleaved", 1), ("split", 2)):
        cos, sin = rope_tables(fractions, 16, THETA, rope_type, heads)
        rotate = apply_split_rope if rope_type == "split" else apply_interleaved_rope
        assert torch.equal(rotate(x, cos, sin), x)
        cos, sin = rope_tables(torch.rand(1, 3, 1, generator=g), 16, THETA, rope_type, heads)
        torch.testing.assert_close(rotate(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


@pytest.mark.parametrize("dim,axes", [(96, 3), (100, 3), (64, 1), (40, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compact_interleaved_tables_rotate_to_the_same_bits(dim: int, axes: int, dtype: torch.dtype) -> None:
    """Half-width tables hold every other value of the full ones, and the rotation from them is bit-identical
    (the same float32 products and sum per element)."""
    g = torch.Generator().manual_seed(5)
    fractions = torch.rand(2, 11, axes, generator=g)
    full = rope_tables(fractions, dim, THETA, "interleaved", num_heads=1)
    compact = rope_tables(fractions, dim, THETA, "interleaved", num_heads=1, compact=True)
    for f, c in zip(full, compact):
        assert c.shape == (2, 11, dim // 2) and torch.equal(f[..., ::2], c) and torch.equal(f[..., 1::2], c)
    x = torch.randn(2, 11, dim, generator=g).to(dtype)
    assert torch.equal(apply_interleaved_rope(x, *compact), apply_interleaved_rope(x, *full))
    # per-head views, as the attention layers pass them: [B, S, H, D] with tables broadcast over heads
    x4 = x.unflatten(-1, (2, -1))
    tables = [t[..., : dim // 2].unsqueeze(2) for t in full]
    halves = [t[..., : dim // 4].unsqueeze(2) for t in compact]
    assert torch.equal(apply_interleaved_rope(x4, *halves), apply_interleaved_rope(x4, *tables))
