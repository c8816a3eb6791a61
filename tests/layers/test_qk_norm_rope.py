"""The fused q/k RMS norm + RoPE kernel (`layers/qk_norm_rope.py`) against LTX-2's plain norm then rope: on the
CPU through Triton's interpreter (in a subprocess, qk_norm_rope_interpret_cases.py: the interpreter must be
chosen before Triton compiles anything), the fallback for inputs it does not take, and the switch."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from ditto.layers import qk_norm_rope as fused
from ditto.layers.rope import apply_rope, rope_tables
from ditto.models.ltx2.attention import LTX2Attention, use_fused_qk_rope

from helpers.interpret import interpreted_report

HERE = Path(__file__).resolve().parent

# Bounds: measured (Triton 3.6 interpreter, NumPy 2.4, torch 2.13 CPU, 2026-12-03) x margin, with the reason.
# float32: the same operations in the same order; only the sum of squares runs as a tree (NumPy's pairwise
# sum) instead of torch's vectorised one, which moves the statistic by an ulp. Measured rel L2 0-6.3e-8
# (max abs 9.5e-7 on values up to ~4) over q and k, both rope layouts, odd and wide rows; x3.
FLOAT32 = 2e-7
TINY_LTX2 = 7e-7  # the whole tiny forward, switch on vs off, float32: measured 1.9e-7 / 2.3e-7; x3
# bf16: measured bit-identical to eager (0 elements differ) in every case. A one-ulp change of the float32
# statistic flips an element's bf16 rounding only when that element lies within ~1 float32 ulp of a bf16
# midpoint (~2^-15 of elements), so a flip is allowed, a pattern is not: at most 0.2 % of elements may differ
# (the float32 norm without the rounding point after it differs in 30 %), and the error against float64
# stays eager's own (measured ratio 1.000).
BF16_DIFFERING = 2e-3
BF16_VS_EAGER_F64 = 1.01

CASES = [
    f"{dtype}_{rope}_{size}_{t}"
    for dtype in ("float32", "bfloat16")
    for rope in ("interleaved", "split")
    for size in ("odd", "wide")
    for t in ("q", "k")
]


@pytest.fixture(scope="module")
def report() -> dict[str, float]:
    pytest.importorskip("triton")
    return interpreted_report(HERE / "qk_norm_rope_interpret_cases.py")


@pytest.mark.parametrize("case", CASES)
def test_kernel_matches_the_eager_norm_then_rope(report: dict[str, float], case: str) -> None:
    """Interleaved half-width and split tables, q and k through one launch (k 5x larger), odd length with 3
    heads of 12 (masked lanes), a wider row of 8 heads of 64, batch 2 with each sample's own positions."""
    if case.startswith("float32"):
        assert report[case] <= FLOAT32, (case, report[case])
    else:
        assert report[f"{case}_differing"] <= BF16_DIFFERING, (case, report[f"{case}_differing"])
        ratio = report[f"{case}_vs_f64"] / report[f"eager_{case}_vs_f64"]
        assert ratio <= BF16_VS_EAGER_F64, (case, ratio)


@pytest.mark.parametrize("case", CASES)
def test_dense_heads_first_layout_gives_the_same_numbers(report: dict[str, float], case: str) -> None:
    assert report[f"{case}_bhsd_equal"] == 1.0 and report[f"{case}_bhsd_dense"] == 1.0


def test_separate_tables_and_a_batch_shared_table_row(report: dict[str, float]) -> None:
    """audio<->video cross-attention: q and k of different lengths with their own tables, k's [1, S, ...]."""
    assert report["separate_q"] <= FLOAT32 and report["separate_k"] <= FLOAT32, report


def test_each_sample_is_rotated_by_its_own_table_row(report: dict[str, float]) -> None:
    assert report["batch_tables_swapped"] > 0.1, report  # far from sample 0's tables used for sample 1


def test_compiled_attention_stays_one_graph_with_the_fused_numbers(report: dict[str, float]) -> None:
    assert report["attention_layers_switched"] == 1.0
    assert report["traced_equal"] == 1.0
    assert report["attention_fused_vs_plain"] <= FLOAT32


@pytest.mark.parametrize("rope_type", ["interleaved", "split"])
def test_tiny_ltx2_forward_with_the_switch_on_and_off(report: dict[str, float], rope_type: str) -> None:
    # 2 blocks x (video self, audio self, 2 text cross, 2 audio<->video); the text ones have no RoPE: plain
    assert report[f"tiny_ltx2_{rope_type}_layers"] == 12
    assert report[f"tiny_ltx2_{rope_type}"] <= TINY_LTX2, report[f"tiny_ltx2_{rope_type}"]


# ---------------------------------------------------------------- what the kernel takes (no Triton needed)
BATCH, SEQ, HEADS, HEAD_DIM = 2, 5, 2, 8
INNER = HEADS * HEAD_DIM


def _tables(rope_type: str, batch: int = BATCH, seq: int = SEQ, compact: bool = True, heads: int = HEADS):
    fractions = torch.rand(batch, seq, 3, generator=torch.Generator().manual_seed(0))
    return rope_tables(fractions, INNER, 10000.0, rope_type, heads, compact=compact)


def _refusals() -> dict[str, tuple]:
    """Inputs the kernel does not take: (x, norm, rope, rope_type, heads) each."""
    x, norm = torch.randn(BATCH, SEQ, INNER), nn.RMSNorm(INNER)
    interleaved = _tables("interleaved")

    class Scaled(nn.RMSNorm):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    grad = torch.randn(BATCH, SEQ, INNER, requires_grad=True)
    split_cos, split_sin = _tables("split")
    # the split table's values with the head axis innermost: [.., H, D/2] does not flatten as a view
    not_flat = split_cos.transpose(2, 3).contiguous().transpose(2, 3)
    no_weight = nn.RMSNorm(INNER, elementwise_affine=False)
    channels_strided = x.transpose(1, 2).contiguous().transpose(1, 2)
    fractions = torch.rand(BATCH, SEQ, 1, generator=torch.Generator().manual_seed(1))
    odd_tables = rope_tables(fractions, 6, 10000.0, "interleaved", 2, compact=True)
    return {
        "full-width tables": (x, norm, _tables("interleaved", compact=False), "interleaved", HEADS),
        "bf16 tables": (x, norm, tuple(t.bfloat16() for t in interleaved), "interleaved", HEADS),
        "tables of another length": (x, norm, _tables("interleaved", seq=SEQ + 1), "interleaved", HEADS),
        "tables of another batch": (x, norm, _tables("interleaved", batch=3), "interleaved", HEADS),
        "one rope head for two": (x, norm, _tables("split", heads=1), "split", HEADS),
        "split tables not flat": (x, norm, (not_flat, split_sin), "split", HEADS),
        "unknown rope type": (x, norm, interleaved, "mrope", HEADS),
        "norm without weight": (x, no_weight, interleaved, "interleaved", HEADS),
        "norm subclass": (x, Scaled(INNER), interleaved, "interleaved", HEADS),
        "norm over one head": (x, nn.RMSNorm(HEAD_DIM), interleaved, "interleaved", HEADS),
        "strided channels": (channels_strided, norm, interleaved, "interleaved", HEADS),
        "float64": (x.double(), nn.RMSNorm(INNER).double(), interleaved, "interleaved", HEADS),
        # 2 heads of 3 channels: an interleaved pair would straddle two heads (tables of the right width)
        "odd head size": (torch.randn(BATCH, SEQ, 6), nn.RMSNorm(6), odd_tables, "interleaved", 2),
        "needs a gradient": (grad, norm, interleaved, "interleaved", HEADS),
        "heads view": (x.unflatten(-1, (HEADS, -1)), norm, interleaved, "interleaved", HEADS),
    }


def test_accepts_what_ltx2_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "KERNEL_DEVICE", "cpu")  # the CPU stands in for the GPU (shapes only)
    x, norm = torch.randn(BATCH, SEQ, INNER), nn.RMSNorm(INNER).bfloat16()
    for rope_type in ("interleaved", "split"):
        assert fused.norm_rope_accepts(x.bfloat16(), norm, _tables(rope_type), rope_type, HEADS), rope_type
        assert fused.norm_rope_accepts(x.bfloat16(), norm, _tables(rope_type, batch=1), rope_type, HEADS)
    fused_qkv = torch.randn(BATCH, SEQ, 3 * INNER)  # q as the fused QKV product's chunk: rows strided
    assert fused.norm_rope_accepts(fused_qkv.chunk(3, -1)[0], norm.float(), _tables("split"), "split", HEADS)


@pytest.mark.parametrize("name", list(_refusals()))
@torch.enable_grad()
def test_refuses_inputs_it_does_not_take(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(fused, "KERNEL_DEVICE", "cpu")
    x, norm, rope, rope_type, heads = _refusals()[name]
    assert not fused.norm_rope_accepts(x, norm, rope, rope_type, heads), name


@pytest.mark.skipif(fused.INTERPRET, reason="under the interpreter the CPU runs the kernel")
@torch.no_grad()
def test_cpu_keeps_the_plain_path() -> None:
    """On the CPU the switch reaches nothing (unless a GPU is there too), and a layer forced on falls back to
    the plain ops, bit for bit."""
    torch.manual_seed(0)
    attn = LTX2Attention(24, heads=HEADS, dim_head=HEAD_DIM).eval()
    x, rope = torch.randn(BATCH, SEQ, 24), _tables("interleaved")
    plain = attn(x, q_rope=rope)
    assert use_fused_qk_rope(attn) == int(fused.fused_norm_rope_available())
    attn.fused_qk_rope = "bshd"  # forced: the call still checks the device
    q = torch.randn(BATCH, SEQ, INNER)
    assert fused.fused_qk_norm_rope(q, q, attn.norm_q, attn.norm_k, rope, None, "interleaved", HEADS) is None
    assert torch.equal(attn(x, q_rope=rope), plain)


def test_switch_names_its_layouts() -> None:
    with pytest.raises(ValueError, match="bhsd"):
        use_fused_qk_rope(LTX2Attention(8, heads=2, dim_head=4), "bsdh")
    layer = LTX2Attention(8, heads=2, dim_head=4)
    layer.fused_qk_rope = "bshd"
    assert use_fused_qk_rope(layer, None) == 0 and layer.fused_qk_rope is None


def _plain(x: torch.Tensor, norm: nn.Module, rope, rope_type: str, heads: int) -> torch.Tensor:  # noqa: ANN001
    """LTX2Attention's plain path: norm, then rope, then the heads view."""
    return apply_rope(norm(x), rope, rope_type).unflatten(-1, (heads, -1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
@pytest.mark.parametrize("rope_type", ["interleaved", "split"])
@torch.no_grad()
def test_cuda_kernel_is_as_exact_as_the_plain_ops(rope_type: str) -> None:
    """On the GPU, bf16 at LTX-2's audio width (32 heads of 64): against float64, the kernel's error is the
    plain ops' own (both are the output's bf16 rounding; the GPU may contract a c - b s into an FMA, a float32
    ulp that only moves a rare rounding)."""
    if not fused.fused_norm_rope_available():
        pytest.skip("no Triton")
    g = torch.Generator().manual_seed(3)
    x = {"q": torch.randn(2, 333, 2048, generator=g), "k": 4 * torch.randn(2, 333, 2048, generator=g)}
    rope = rope_tables(torch.rand(2, 333, 3, generator=g), 2048, 10000.0, rope_type, 32, compact=True)
    norms = {name: nn.RMSNorm(2048, eps=1e-6) for name in x}
    for norm in norms.values():
        norm.weight.normal_(1, 0.3, generator=g)
    exact = {
        n: _plain(x[n].double(), copy.deepcopy(norms[n]).double(), [t.double() for t in rope], rope_type, 32)
        for n in x
    }
    x = {n: t.cuda().bfloat16() for n, t in x.items()}
    norms = {n: norm.cuda().bfloat16() for n, norm in norms.items()}
    rope = tuple(t.cuda() for t in rope)
    got = dict(
        zip(x, fused.fused_qk_norm_rope(x["q"], x["k"], norms["q"], norms["k"], rope, None, rope_type, 32))
    )
    for n in x:
        err = float((got[n].double().cpu() - exact[n]).norm() / exact[n].norm())
        plain = _plain(x[n], norms[n], rope, rope_type, 32)
        plain_err = float((plain.double().cpu() - exact[n]).norm() / exact[n].norm())
        assert err <= 1.05 * plain_err, (n, err, plain_err)
