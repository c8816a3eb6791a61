"""Run by test_qk_norm_rope.py in a subprocess with TRITON_INTERPRET=1 (Triton's CPU interpreter, chosen before
the kernel module is imported): the fused q/k RMS norm + RoPE kernel against the eager norm then rope on CPU
tensors, its errors printed as one JSON line.

bfloat16: Triton 3.6's interpreter rounds float32 -> bfloat16 by truncation (it converts bit patterns and
ignores the cut-off bits), where the GPU's `cvt.rn.bf16.f32` rounds to nearest even, as PyTorch does. That
conversion alone is replaced below by PyTorch's own, so the kernel's bf16 rounding points are tested as a
GPU executes them; nothing else of the interpreter changes.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
import triton.language as tl
import triton.runtime.interpreter as interpreter
from torch import nn

from ditto.layers.qk_norm_rope import fused_qk_norm_rope, launch
from ditto.layers.rope import apply_rope, rope_tables

_convert_float = interpreter._convert_float


def _round_to_nearest_even(data, src, dst, rounding_mode):  # noqa: ANN001, ANN202 (the interpreter's own)
    if src == tl.float32 and dst == tl.bfloat16:
        rounded = torch.from_numpy(np.ascontiguousarray(data).view(np.float32)).to(torch.bfloat16)
        return rounded.view(torch.int16).numpy().view(np.uint16)
    return _convert_float(data, src, dst, rounding_mode)


interpreter._convert_float = _round_to_nearest_even


def rel_l2(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


def norms(inner: int, dtype: torch.dtype, g: torch.Generator) -> tuple[nn.RMSNorm, nn.RMSNorm]:
    pair = nn.RMSNorm(inner, eps=1e-6), nn.RMSNorm(inner, eps=1e-6)
    with torch.no_grad():
        for norm in pair:
            norm.weight.copy_(1 + 0.3 * torch.randn(inner, generator=g))
    return pair[0].to(dtype), pair[1].to(dtype)


def tables(batch: int, seq: int, inner: int, heads: int, rope_type: str, g: torch.Generator):  # noqa: ANN201
    """LTX-2's tables: per-sample positions (each sample its own), half-width for interleaved."""
    fractions = torch.rand(batch, seq, 3, generator=g)
    return rope_tables(fractions, inner, 10000.0, rope_type, heads, compact=True)


def eager(x: torch.Tensor, norm: nn.Module, rope, rope_type: str, heads: int) -> torch.Tensor:  # noqa: ANN001
    """LTX2Attention's plain path: norm, then rope, then the heads view."""
    return apply_rope(norm(x), rope, rope_type).unflatten(-1, (heads, -1))


def pair_case(
    report: dict, name: str, dtype: torch.dtype, rope_type: str, shape: tuple[int, int, int, int], seed: int
) -> None:
    """q and k through one kernel (shared tables), against eager; both layouts; q and k as strided chunks of
    one fused projection (the QKV product's output), k with a larger scale than q."""
    batch, seq, heads, head_dim = shape
    inner = heads * head_dim
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(batch, seq, 3 * inner, generator=g).to(dtype)
    qkv[..., inner : 2 * inner] *= 5
    q, k, _ = qkv.chunk(3, dim=-1)
    norm_q, norm_k = norms(inner, dtype, g)
    rope = tables(batch, seq, inner, heads, rope_type, g)
    got = fused_qk_norm_rope(q, k, norm_q, norm_k, rope, None, rope_type, heads)
    dense = fused_qk_norm_rope(q, k, norm_q, norm_k, rope, None, rope_type, heads, "bhsd")
    for label, x, norm, out, out_dense in (
        ("q", q, norm_q, got[0], dense[0]),
        ("k", k, norm_k, got[1], dense[1]),
    ):
        want = eager(x, norm, rope, rope_type, heads)
        report[f"{name}_{label}"] = rel_l2(out, want)
        report[f"{name}_{label}_max_abs"] = float((out.double() - want.double()).abs().max())
        report[f"{name}_{label}_bhsd_equal"] = float(torch.equal(out, out_dense))
        report[f"{name}_{label}_bhsd_dense"] = float(out_dense.transpose(1, 2).is_contiguous())
        if dtype != torch.float32:  # both against the float64 truth: the kernel as exact as eager?
            truth = eager(
                x.double(), copy.deepcopy(norm).double(), tuple(t.double() for t in rope), rope_type, heads
            )
            report[f"{name}_{label}_vs_f64"] = rel_l2(out, truth)
            report[f"eager_{name}_{label}_vs_f64"] = rel_l2(want, truth)
            report[f"{name}_{label}_differing"] = float((out != want).double().mean())


def separate_tables_case(report: dict) -> None:
    """audio<->video cross-attention: q and k with their own tables and lengths (two launches), the k table
    shared by the batch ([1, S, ...]: batch stride 0)."""
    g = torch.Generator().manual_seed(7)
    batch, heads, head_dim = 2, 2, 8
    inner = heads * head_dim
    q, k = torch.randn(batch, 9, inner, generator=g), torch.randn(batch, 4, inner, generator=g)
    norm_q, norm_k = norms(inner, torch.float32, g)
    q_rope = tables(batch, 9, inner, heads, "interleaved", g)
    k_rope = tables(1, 4, inner, heads, "interleaved", g)
    got = fused_qk_norm_rope(q, k, norm_q, norm_k, q_rope, k_rope, "interleaved", heads)
    report["separate_q"] = rel_l2(got[0], eager(q, norm_q, q_rope, "interleaved", heads))
    report["separate_k"] = rel_l2(got[1], eager(k, norm_k, k_rope, "interleaved", heads))


def table_batch_matters_case(report: dict) -> None:
    """The kernel must read each sample's own table row: sample 1 rotated with sample 0's tables is far off."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 5, 32, generator=g)
    norm, _ = norms(32, torch.float32, g)
    cos, sin = tables(2, 5, 32, 2, "interleaved", g)
    out, _ = launch(x, norm.weight, cos, sin, 1e-6, 2, False, False)
    swapped = eager(x, norm, (cos.flip(0), sin.flip(0)), "interleaved", 2).flatten(2)
    report["batch_tables_swapped"] = rel_l2(out, swapped)


def traced_attention_case(report: dict) -> None:
    """An LTX2Attention with the switch on, compiled with fullgraph: the custom ops' fake kernels let it trace
    as one graph, and the traced module gives the eager fused numbers."""
    from ditto.models.ltx2.attention import LTX2Attention, use_fused_qk_rope

    torch.manual_seed(9)
    attn = LTX2Attention(24, heads=2, dim_head=8).eval()
    report["attention_layers_switched"] = use_fused_qk_rope(attn)
    x = torch.randn(2, 7, 24)
    rope = tables(2, 7, 16, 2, "interleaved", torch.Generator().manual_seed(10))
    with torch.no_grad():
        fused = attn(x, q_rope=rope)
        traced = torch.compile(attn, backend="aot_eager", fullgraph=True)(x, q_rope=rope)
        use_fused_qk_rope(attn, None)
        plain = attn(x, q_rope=rope)
    report["traced_equal"] = float(torch.equal(traced, fused))
    report["attention_fused_vs_plain"] = rel_l2(fused, plain)


def tiny_ltx2_case(report: dict, rope_type: str) -> None:
    """The tiny LTX-2 forward (float32) with the switch off and on."""
    from benchmarks.harness.specs import SPECS
    from ditto.models.ltx2 import LTX2Transformer
    from ditto.models.ltx2.attention import use_fused_qk_rope

    spec = SPECS["tiny-ltx2"]
    torch.manual_seed(0)
    model = LTX2Transformer(**spec.config, rope_type=rope_type).eval()
    with torch.no_grad():
        for param in model.parameters():  # non-zero everywhere (the output layers start at zero)
            param.normal_(0, 0.2)
    _, kwargs = spec.inputs(
        spec.config, spec.default_shape, torch.device("cpu"), torch.float32, torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        plain = model(**kwargs)
        report[f"tiny_ltx2_{rope_type}_layers"] = use_fused_qk_rope(model)
        fused = model(**kwargs)
    report[f"tiny_ltx2_{rope_type}"] = max(rel_l2(a, b) for a, b in zip(fused, plain))


def main() -> None:
    report: dict[str, float] = {}
    torch.set_grad_enabled(False)
    for dtype in (torch.float32, torch.bfloat16):
        for rope_type in ("interleaved", "split"):
            name = f"{str(dtype).removeprefix('torch.')}_{rope_type}"
            # odd length; 3 heads of 12 (no power of two: masked lanes); a wide row like LTX-2's, smaller
            pair_case(report, f"{name}_odd", dtype, rope_type, (2, 7, 3, 12), seed=1)
            pair_case(report, f"{name}_wide", dtype, rope_type, (2, 5, 8, 64), seed=2)
    separate_tables_case(report)
    table_batch_matters_case(report)
    traced_attention_case(report)
    for rope_type in ("interleaved", "split"):
        tiny_ltx2_case(report, rope_type)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
