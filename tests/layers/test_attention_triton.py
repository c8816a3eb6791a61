"""ditto's Triton attention kernel (bf16/fp16 and FP8) on the CPU through Triton's interpreter, and the
attention order that selects it. The interpreter must be chosen before Triton compiles anything, so the
kernel runs in a subprocess (triton_interpret_cases.py); skipped where Triton is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.interpret import interpreted_report

HERE = Path(__file__).resolve().parent

# Bounds: measured (Triton 3.6 interpreter, 2026-12-02) x margin, with the reason.
FP16_VS_SDPA = 1.5  # kernel error / SDPA's fp16 error vs float64: measured 0.99-1.02 (same precision)
DISPATCH_FP16 = 7e-4  # through attention() and a traced graph: measured 2.3e-4, x3
# FP8 (e4m3, 3 mantissa bits) vs float64 on N(0, 1) inputs (q x2): measured 0.070-0.076; x1.3. The FP8
# products' own error: each of q.k, v and the probabilities rounds to ~2-4 % (benchmarks/NOTES.md).
FP8_VS_EXACT = 0.1
FP8_VS_DEQUANTIZED = 0.06  # the probabilities' e4m3 rounding alone: measured 0.034-0.040, x1.5
DISPATCH_FP8 = 0.1  # measured 0.063


@pytest.fixture(scope="module")
def report() -> dict[str, float]:
    pytest.importorskip("triton")
    return interpreted_report(HERE / "triton_interpret_cases.py")


@pytest.mark.parametrize("case", ["ragged", "even", "cross"])
def test_half_precision_kernel_is_as_exact_as_sdpa(report: dict[str, float], case: str) -> None:
    """Ragged tiles (query and key counts not multiples of the blocks), strided k/v, Sq != Sk."""
    got, sdpa = report[f"fp16_{case}"], report[f"sdpa_fp16_{case}"]
    assert got <= FP16_VS_SDPA * sdpa, f"{case}: kernel rel L2 {got:.2e} vs SDPA fp16 {sdpa:.2e}"


@pytest.mark.parametrize("case", ["ragged", "even", "cross"])
def test_fp8_kernel_error_is_bounded(report: dict[str, float], case: str) -> None:
    assert report[f"fp8_{case}"] <= FP8_VS_EXACT, report
    assert report[f"fp8_vs_dequantized_{case}"] <= FP8_VS_DEQUANTIZED, report


def test_attention_dispatches_unmasked_calls_to_the_kernel_and_masked_ones_to_sdpa(
    report: dict[str, float],
) -> None:
    assert report["dispatch_triton"] <= DISPATCH_FP16, report
    assert report["dispatch_fp8"] <= DISPATCH_FP8, report
    # and the FP8 path really is FP8: far from the fp16 kernel's error
    assert report["dispatch_fp8"] > 30 * report["dispatch_triton"], report
    assert report["masked_triton_is_sdpa"] == 1.0 and report["masked_fp8_is_sdpa"] == 1.0


def test_order_names_and_unusable_kernels() -> None:
    """'triton' / 'fp8' lead the order only where they can run (not on this CPU-only machine)."""
    from ditto.layers.attention import attention_backends, set_attention_backends

    before = attention_backends()
    try:
        set_attention_backends(["fp8", "cudnn", "math"])
        usable = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 9
        assert attention_backends() == (["fp8"] if usable else []) + ["cudnn", "math"]
        with pytest.raises(ValueError, match="sdpa_layout"):
            set_attention_backends(["cudnn"], sdpa_layout="bhsd")
        with pytest.raises(ValueError, match="no SDPA backend"):
            set_attention_backends(["triton"])
    finally:
        set_attention_backends(before)


def test_contiguous_sdpa_layout_gives_the_same_numbers() -> None:
    from ditto.layers.attention import attention, attention_backends, set_attention_backends

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 9, 3, 16, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 9, 9, generator=g) > 0.3
    before = attention_backends()
    try:
        plain = attention(q, k, v), attention(q, k, v, mask)
        set_attention_backends(["cudnn", "math"], sdpa_layout="contiguous")
        dense = attention(q, k, v), attention(q, k, v, mask)
    finally:
        set_attention_backends(before)
    assert all(torch.equal(a, b) for a, b in zip(plain, dense))


def test_engine_refuses_a_triton_kernel_it_cannot_run() -> None:
    from ditto.engine import choose_attention
    from ditto.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="attention='fp8'"):
        choose_attention(torch.device("cpu"), "fp8")
    choose_attention(torch.device("cpu"), "sdpa")  # nothing to choose on the CPU, and no error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
@pytest.mark.parametrize("seq,dim", [(1000, 128), (333, 64)])
def test_cuda_kernels_against_float64(seq: int, dim: int) -> None:
    """On the GPU, bf16: the kernel as exact as SDPA's own bf16 (the same bounds as the interpreter's fp16
    cases); FP8 (Hopper only) within the FP8 bound."""
    from ditto.layers.attention import naive_attention
    from ditto.layers.attention_triton import fp8_attention, fp8_attention_available, triton_attention

    g = torch.Generator().manual_seed(seq)
    q, k, v = (torch.randn(2, seq, 4, dim, generator=g) for _ in range(3))
    exact = naive_attention(q.double(), k.double(), v.double())
    bf16 = [t.cuda().bfloat16() for t in (q, k, v)]
    sdpa = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in bf16)).transpose(
        1, 2
    )

    def err(out: torch.Tensor) -> float:
        return float((out.double().cpu() - exact).norm() / exact.norm())

    assert err(triton_attention(*bf16)) <= FP16_VS_SDPA * err(sdpa)
    if fp8_attention_available():
        assert err(fp8_attention(*bf16)) <= FP8_VS_EXACT
