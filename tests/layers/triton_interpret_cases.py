"""Run by test_attention_triton.py in a subprocess with TRITON_INTERPRET=1 (Triton's CPU interpreter, which
must be chosen before the kernel module is imported): ditto's Triton attention kernel on CPU tensors, its
errors printed as one JSON line.

float16, not bfloat16: the interpreter computes on NumPy arrays, which have no bfloat16 (its bf16 products
come out wrong); the kernel is the same code for both, only the element type differs.
"""

from __future__ import annotations

import json

import torch
import triton.runtime.interpreter as interpreter

from ditto.layers import attention as attention_module
from ditto.layers.attention import attention, naive_attention, set_attention_backends
from ditto.layers.attention_triton import KernelConfig, fp8_attention, launch, quantize_fp8, triton_attention

_patch = interpreter._patch_lang_tensor


def _index_from_one_element_array(tensor, scope) -> None:
    # Triton 3.6's interpreter holds scalars as 1-element arrays and takes int() of them, which NumPy 2.4
    # refuses; read the one element instead (only `range(runtime_int)` in a kernel needs it).
    _patch(tensor, scope)
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))


interpreter._patch_lang_tensor = _index_from_one_element_array
SMALL = KernelConfig(32, 16, 4, 1)  # tiles smaller than the sequences: several tiles and a ragged last one


def rel_l2(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


def inputs(batch: int, sq: int, sk: int, heads: int, dim: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    # q as the projections lay it out, k and v as strided [B, S, H, D] views of [B, H, S, D] tensors.
    q = torch.randn(batch, sq, heads, dim, generator=g) * 2
    k = torch.randn(batch, heads, sk, dim, generator=g).permute(0, 2, 1, 3)
    v = torch.randn(batch, heads, sk, dim, generator=g).permute(0, 2, 1, 3)
    return q, k, v


def main() -> None:
    report: dict[str, float] = {}
    for name, shape in {
        "ragged": (2, 70, 50, 3, 32),
        "even": (1, 64, 64, 2, 64),
        "cross": (1, 40, 96, 2, 16),
    }.items():
        q, k, v = inputs(*shape, seed=len(name))
        exact = naive_attention(q.double(), k.double(), v.double())
        half = [t.half() for t in (q, k, v)]
        report[f"fp16_{name}"] = rel_l2(launch(*half, None, torch.float16, SMALL), exact)
        sdpa = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in half))
        report[f"sdpa_fp16_{name}"] = rel_l2(sdpa.transpose(1, 2), exact)
        q8, qs, k8, ks, v8, vs = quantize_fp8(*half)
        got = launch(q8, k8, v8, (qs, ks, vs), torch.float16, SMALL)
        report[f"fp8_{name}"] = rel_l2(got, exact)
        # The same quantized inputs in float64: what is left is the probabilities' e4m3 rounding.
        dequantized = naive_attention(
            q8.double() * qs[..., None], k8.double() * ks[..., None],
            (v8.double() * vs[:, :, None, None]).permute(0, 3, 1, 2),
        )  # fmt: skip
        report[f"fp8_vs_dequantized_{name}"] = rel_l2(got, dequantized)

    # Through attention() and a traced graph: the custom ops' fake kernels let fullgraph tracing pass.
    q, k, v = (t.half() for t in inputs(1, 48, 48, 2, 32, seed=5))
    exact = naive_attention(q.double(), k.double(), v.double())
    cpu_accepts = lambda q, k, mask: mask is None  # noqa: E731 (the CPU stands in for the GPU here)
    for kernel, fn in (("triton", triton_attention), ("fp8", fp8_attention)):
        attention_module.UNMASKED_KERNELS[kernel] = (lambda: True, cpu_accepts, fn)
        set_attention_backends([kernel, "math"])
        compiled = torch.compile(attention, backend="aot_eager", fullgraph=True)
        report[f"dispatch_{kernel}"] = rel_l2(compiled(q, k, v), exact)
        mask = torch.ones(1, 1, 48, 48, dtype=torch.bool)
        report[f"masked_{kernel}_is_sdpa"] = float(
            torch.equal(attention(q, k, v, mask), attention_sdpa(q, k, v, mask))
        )
    print(json.dumps(report))


def attention_sdpa(q, k, v, mask):  # noqa: ANN001, ANN201
    out = torch.nn.functional.scaled_dot_product_attention(
        *(t.transpose(1, 2) for t in (q, k, v)), attn_mask=mask
    )
    return out.transpose(1, 2)


if __name__ == "__main__":
    main()
