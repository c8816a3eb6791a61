"""Attention for benchmarks/gpu_speed.py: which kernel each in-model call really gets (the census), and the
candidate kernels timed alone at the model's shapes.

Census: one eager forward under a dispatch mode that records every attention call: the op (SDPA, or one
of ditto's custom ops), the SDPA backend PyTorch picks for those exact inputs under the priority order in
force (`torch._fused_sdp_choice`), shapes, strides, dtype and mask. Grouped, with a count per group.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

SDPA_BACKEND_NAMES = {
    int(getattr(SDPBackend, name)): name.lower().removesuffix("_attention")
    for name in ("MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")
}


class _Census(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 (torch's protocol)
        kwargs = kwargs or {}
        name = str(func)
        if "scaled_dot_product" in name or name.startswith(("ditto.", "ditto::")):
            self.calls[_describe(name, args, kwargs)] += 1
        return func(*args, **kwargs)


def _describe(name: str, args: tuple, kwargs: dict) -> tuple:
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    q, k = tensors[0], tensors[1]
    mask = kwargs.get("attn_mask", tensors[3] if len(tensors) > 3 and "scaled_dot_product" in name else None)
    backend = ""
    if "scaled_dot_product_attention" in name:
        choice = torch._fused_sdp_choice(q, k, tensors[2], mask)
        backend = SDPA_BACKEND_NAMES.get(int(choice), str(choice))
    masks = "none" if mask is None else f"{tuple(mask.shape)} {str(mask.dtype).removeprefix('torch.')}"
    return (
        name, backend, str(q.dtype).removeprefix("torch."), tuple(q.shape), tuple(q.stride()),
        tuple(k.shape), tuple(k.stride()), q.is_contiguous(), masks,
    )  # fmt: skip


def census(run: Callable[[], Any]) -> list[dict[str, Any]]:
    """Every attention call of `run()` (eager), grouped: op, SDPA backend, dtype, shapes, strides, mask."""
    mode = _Census()
    with torch.inference_mode(), mode:
        run()
    keys = (
        "op",
        "sdpa_backend",
        "dtype",
        "q_shape",
        "q_stride",
        "k_shape",
        "k_stride",
        "q_contiguous",
        "mask",
    )
    return [{**dict(zip(keys, key)), "calls": n} for key, n in mode.calls.most_common()]


def _time_ms(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    from benchmarks.harness.measure import time_ms

    return statistics.median(time_ms(fn, device, warmup, repeats))


def _once_per_input(
    prepare: Callable[..., tuple], kernel: Callable[..., torch.Tensor]
) -> Callable[..., torch.Tensor]:
    """fn(q, k, v) = kernel(*prepare(q, k, v)), prepare run once per input set (so it is not timed)."""
    cache: dict[int, tuple] = {}

    def run(q, k, v):  # noqa: ANN001, ANN202
        if id(q) not in cache:
            cache.clear()
            cache[id(q)] = prepare(q, k, v)
        return kernel(*cache[id(q)])

    return run


def _sdpa(backend: SDPBackend) -> Callable[..., torch.Tensor]:
    def run(q, k, v):  # noqa: ANN001, ANN202 ([B, H, S, D] in, [B, S, H, D] view out)
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v).permute(0, 2, 1, 3)

    return run


def _heads_first(q, k, v, dense: bool = False) -> tuple:  # noqa: ANN001
    views = tuple(t.permute(0, 2, 1, 3) for t in (q, k, v))
    return tuple(t.contiguous() for t in views) if dense else views


def _fa3_fp8_inputs(q, k, v) -> tuple:  # noqa: ANN001
    """e4m3 copies of q, k, v and their [B, H] scales, quantized as the model's FP8 path does."""
    from ditto.layers.attention_fa3 import to_e4m3

    (q8, q_scale), (k8, k_scale), (v8, v_scale) = (to_e4m3(t) for t in (q, k, v))
    return q8, k8, v8, q_scale, k_scale, v_scale


def kernel_candidates(device: torch.device) -> dict[str, Callable[..., torch.Tensor] | None]:
    """name -> fn(q, k, v) on [B, S, H, D] tensors (the projections' layout), or None where it cannot run
    here. The attention() rows take the path the model takes; the others call one kernel directly."""
    from ditto.layers import attention as attn
    from ditto.layers.attention_fa3 import fa3_e4m3
    from ditto.layers.attention_triton import (
        fp8_attention_available,
        quantize_fp8,
        triton_attention_fp8,
        triton_available,
    )

    def through(order: tuple[str, ...], layout: str = "strided") -> Callable[..., torch.Tensor]:
        def run(q, k, v):  # noqa: ANN001, ANN202
            attn.set_attention_backends(order, layout)
            return attn.attention(q, k, v)

        return run

    cuda, fp8 = device.type == "cuda", fp8_attention_available()
    dense = lambda q, k, v: _heads_first(q, k, v, dense=True)  # noqa: E731
    sdpa_order = ("cudnn", "flash", "efficient", "math")
    return {
        "cudnn, dense [B,H,S,D] inputs (copies not timed)": _once_per_input(dense, _sdpa(SDPBackend.CUDNN_ATTENTION)) if cuda else None,
        "cudnn, strided [B,S,H,D] views (as ditto calls it)": _once_per_input(_heads_first, _sdpa(SDPBackend.CUDNN_ATTENTION)) if cuda else None,
        "flash (FA2), strided": _once_per_input(_heads_first, _sdpa(SDPBackend.FLASH_ATTENTION)) if cuda else None,
        "attention(): SDPA order, strided": through(sdpa_order),
        "attention(): SDPA order, contiguous copies": through(sdpa_order, "contiguous"),
        "attention(): fa3": through(("fa3", *sdpa_order)) if cuda and attn.UNMASKED_KERNELS["fa3"][0]() else None,
        "fa3 fp8 alone (per-head scales, pre-quantized)": _once_per_input(_fa3_fp8_inputs, fa3_e4m3)
        if cuda and attn.UNMASKED_KERNELS["fa3"][0]() else None,
        "attention(): fa4": through(("fa4", *sdpa_order)) if cuda and attn.UNMASKED_KERNELS["fa4"][0]() else None,
        "attention(): triton": through(("triton", *sdpa_order)) if triton_available() else None,
        "attention(): fp8 (quantization included)": through(("fp8", *sdpa_order)) if fp8 else None,
        "fp8 kernel alone (pre-quantized)": _once_per_input(
            quantize_fp8, lambda *t: triton_attention_fp8(*t, torch.bfloat16)
        ) if fp8 else None,
    }  # fmt: skip


def kernel_table(
    device: torch.device,
    seqs: tuple[int, ...],
    batch: int = 2,
    heads: int = 32,
    dim: int = 128,
    dtype: torch.dtype = torch.bfloat16,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Each candidate at each sequence length (self-attention, unmasked): ms, TFLOP/s, rel L2 against the
    first candidate that ran (cuDNN dense on a GPU)."""
    from ditto.layers.attention import attention_backends, set_attention_backends

    before = attention_backends()
    rows: list[dict[str, Any]] = []
    try:
        for seq in seqs:
            g = torch.Generator(device="cpu").manual_seed(seq)
            qkv = tuple(torch.randn(batch, seq, heads, dim, generator=g).to(device, dtype) for _ in range(3))
            reference: list[torch.Tensor] = []  # the first output, once one candidate ran
            for name, fn in kernel_candidates(device).items():
                row = {"kernel": name, "seq": seq, "batch": batch, "heads": heads, "dim": dim}
                rows.append({**row, **_time_candidate(fn, qkv, device, reference)})
                if "ms" in rows[-1]:
                    log(f"[attention] S={seq:6d} {name:52s} {rows[-1]['ms']:8.3f} ms "
                        f"{rows[-1]['tflops_per_s']:7.1f} TFLOP/s relL2 {rows[-1]['rel_l2_vs_first']:.2e}")  # fmt: skip
    finally:
        set_attention_backends(before)
    return rows


def _time_candidate(
    fn: Callable[..., torch.Tensor] | None,
    qkv: tuple[torch.Tensor, ...],
    device: torch.device,
    reference: list[torch.Tensor],
    warmup: int = 3,
    repeats: int = 10,
) -> dict[str, Any]:
    """ms, TFLOP/s and rel L2 against reference[0] (set here by the first candidate that runs)."""
    if fn is None:
        return {"skipped": "not available here"}
    try:
        with torch.inference_mode():
            out = fn(*qkv)  # the first call compiles / tunes
            ms = _time_ms(lambda: fn(*qkv), device, warmup, repeats)
    except Exception as exc:  # noqa: BLE001 (one kernel failing must not lose the others)
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if not reference:
        reference.append(out)
    batch, seq, heads, dim = qkv[0].shape
    flops = 4 * batch * heads * seq * seq * dim
    err = float((out.double() - reference[0].double()).norm() / reference[0].double().norm())
    return {"ms": ms, "tflops_per_s": flops / (ms * 1e-3) / 1e12, "rel_l2_vs_first": err}
