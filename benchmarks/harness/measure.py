"""Build once, load the same weights into both networks, check parity, time, count FLOPs.

Memory: ditto's model is built on the meta device and takes diffusers' parameter tensors themselves
(load_state_dict(assign=True)), so the two share one copy of the weights; fusing projections later adds
only the fused matrices. That is what lets two 19B LTX-2 models sit on one 80 GB card.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from benchmarks.harness.specs import ModelSpec, Shape, outputs

WEIGHT_STD = 0.02


@dataclass(frozen=True)
class Variant:
    """One way of running a network. Variants run in list order; fuse/compile are in place and stay on."""

    name: str
    library: str  # "diffusers" | "ditto"
    compile: bool = False
    fused: bool = False
    attention: tuple[str, ...] | None = ("cudnn", "flash", "efficient", "math")  # ditto's CUDA order
    mode: str | None = None  # torch.compile mode
    fp8: str | None = None  # ditto only: FP8 block Linears, "rowwise" | "tensorwise" scaling
    quick: bool = False  # 1 warm-up + 3 runs instead of the full count (ablations)
    sdpa_layout: str = "strided"  # ditto: "contiguous" hands SDPA dense [B, H, S, D] copies
    gelu_epilogue: bool = False  # ditto: GELU in the up-projection's cuBLASLt epilogue (layers/mlp.py)
    compact_rope: bool = True  # ditto (LTX-2): half-width interleaved RoPE tables (layers/rope.py)
    # ditto (LTX-2): q/k RMS norm + RoPE in one Triton kernel writing "bshd" or "bhsd" (layers/qk_norm_rope.py)
    fused_qk_rope: str | None = None
    # ditto: the forward recorded once as a CUDA graph and replayed (acceleration/cuda_graph.py's PassGraphs,
    # every tensor argument copied in per call, as the pipelines' graphed passes do)
    cuda_graph: bool = False


def build_reference(spec: ModelSpec, device: torch.device, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    """diffusers' model with N(0, 0.02) weights, constructed directly on the device in `dtype` (fast);
    or, for a spec with a weights folder, the checkpoint's own weights."""
    if spec.weights:
        import diffusers

        cls = getattr(diffusers, spec.reference_class)
        return cls.from_pretrained(spec.weights, torch_dtype=dtype).to(device).eval()
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.set_default_device(device)
        torch.set_default_dtype(dtype)
        try:
            model = spec.reference()
        finally:
            # None, not "cpu": a "cpu" default-device mode left active breaks torch.compile.
            torch.set_default_dtype(torch.float32)
            torch.set_default_device(None)
    else:
        model = spec.reference().to(device=device, dtype=dtype)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, WEIGHT_STD)
    return model.eval()


def native_sharing_weights(spec: ModelSpec, reference: nn.Module) -> nn.Module:
    """ditto's model on the reference's own parameter tensors (strict: every key must match)."""
    with torch.device("meta"):
        native = spec.native(spec.config)
    native.load_state_dict(reference.state_dict(), strict=True, assign=True)
    left = [name for name, t in [*native.named_parameters(), *native.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"{spec.name}: tensors not in the state_dict stayed on meta: {left[:5]}")
    return native.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Per-run milliseconds: CUDA events on a GPU (no host clock in the loop), perf_counter on the CPU."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def count_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def parity(expected: tuple[torch.Tensor, ...], got: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Cosine similarity and relative L2 error (float64) of the first output (video/image), then of all."""
    result: dict[str, float] = {}
    pairs = [("", expected[:1], got[:1]), ("all_", expected, got)]
    for prefix, exp, out in pairs:
        e = torch.cat([t.detach().double().flatten() for t in exp])
        o = torch.cat([t.detach().double().flatten() for t in out])
        result[prefix + "cosine"] = float(torch.nn.functional.cosine_similarity(e, o, dim=0))
        result[prefix + "rel_l2"] = float((o - e).norm() / e.norm())
        result[prefix + "finite"] = bool(torch.isfinite(o).all())
    return result


def kernel_categories(names_times: list[tuple[str, float]]) -> dict[str, float]:
    """Group device kernel time (ms) by kind: matrix products, attention, compiled (Triton), other."""
    totals = {"gemm": 0.0, "attention": 0.0, "triton": 0.0, "other": 0.0}
    for name, ms in names_times:
        low = name.lower()
        if any(k in low for k in ("fmha", "flash", "attention", "sdpa", "attn")):
            totals["attention"] += ms
        elif any(k in low for k in ("gemm", "nvjet", "xmma", "cutlass", "cublas", "matmul", "splitk")):
            totals["gemm"] += ms
        elif low.startswith("triton"):
            totals["triton"] += ms
        else:
            totals["other"] += ms
    return totals


def profile(fn: Callable[[], Any], top: int = 25) -> tuple[dict[str, float], str]:
    """One run under torch.profiler: (ms per kernel category, a table of the top kernels)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    rows = [
        (e.key, e.device_time_total / 1e3, e.count)
        for e in prof.key_averages()
        if e.device_time_total > 0 and e.device_type == torch.autograd.DeviceType.CUDA
    ]
    rows.sort(key=lambda r: -r[1])
    totals = kernel_categories([(name, ms) for name, ms, _ in rows])
    lines = [f"{ms:10.2f} ms {count:6d}x  {name[:140]}" for name, ms, count in rows[:top]]
    return totals, "\n".join(lines)


def apply_variant(model: nn.Module, variant: Variant, state: dict[str, Any]) -> None:
    """Put `model` in the variant's configuration (fuse/compile once; they cannot be undone)."""
    from ditto.layers.attention import set_attention_backends

    if variant.library == "ditto":
        set_attention_backends(variant.attention, variant.sdpa_layout)
        set_speed_switches(model, variant, state)
        if variant.fused and not state.get("fused"):
            # Models without fused projections yet run unfused; the report says which did.
            if hasattr(model, "fuse_projections"):
                model.fuse_projections()
            state["fused"] = hasattr(model, "fuse_projections")
    if variant.library == "ditto" and state.get("fp8") != variant.fp8:
        _set_fp8(model, variant.fp8, state)
    if variant.compile and state.get("compiled", "not compiled") != variant.mode:
        if variant.library == "diffusers":
            model.compile_repeated_blocks(fullgraph=True, dynamic=False, mode=variant.mode)
        else:
            from ditto.acceleration.compile import compile_transformer

            compile_transformer(model, mode=variant.mode)
        state["compiled"] = variant.mode


def set_speed_switches(model: nn.Module, variant: Variant, state: dict[str, Any]) -> None:
    """The GELU epilogue, LTX-2's RoPE table width and its fused q/k norm + RoPE, as the variant asks; `state`
    records how many modules each switch reached (0: the model has none, e.g. FLUX.2 has no GELU
    feed-forward, or the kernel cannot run here: the fused q/k RoPE needs CUDA and Triton)."""
    from ditto.layers.mlp import use_gelu_epilogue
    from ditto.models.ltx2.attention import use_fused_qk_rope
    from ditto.models.ltx2.rope import LTX2Rope

    state["gelu_epilogue_layers"] = use_gelu_epilogue(model, variant.gelu_epilogue) * variant.gelu_epilogue
    state["fused_qk_rope_layers"] = use_fused_qk_rope(model, variant.fused_qk_rope)
    ropes = [module for module in model.modules() if isinstance(module, LTX2Rope)]
    for rope in ropes:
        rope.compact = variant.compact_rope
    state["rope_modules"] = len(ropes)


def _set_fp8(model: nn.Module, scaling: str | None, state: dict[str, Any]) -> None:
    """Swap FP8 Linears in or out (the originals are kept, so variants can go back to bf16)."""
    from ditto.acceleration.fp8 import quantize_transformer, restore

    restore(state.pop("fp8_swaps", []))
    if scaling:
        state["fp8_swaps"] = quantize_transformer(model, scaling)
    state["fp8"] = scaling


def run_case(
    spec: ModelSpec,
    shapes: list[Shape],
    variants: list[Variant],
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    warmup: int = 2,
    repeats: int = 5,
    profile_variants: tuple[str, ...] = (),
    on_update: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] = print,
    inspect: Callable[[nn.Module, nn.Module, tuple[dict[str, Any], dict[str, Any]]], dict] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run every variant on every shape; parity is against diffusers eager on the same inputs.

    inspect(reference, native, (reference kwargs, native kwargs)): called once on the first shape before any
    variant (both models eager); its dict goes into the report as "inspect". deadline: a
    time.perf_counter() value after which no new variant starts (each skipped one is listed)."""
    t0 = time.perf_counter()
    reference = build_reference(spec, device, dtype)
    params = sum(p.numel() for p in reference.parameters())
    log(f"[{spec.name}] built {params / 1e9:.2f} B params in {time.perf_counter() - t0:.1f} s")
    report: dict[str, Any] = {
        "model": spec.name, "parameters": params, "dtype": str(dtype).removeprefix("torch."),
        "weight_std": WEIGHT_STD, "runs": [], "profiles": {},
    }  # fmt: skip
    generator = torch.Generator().manual_seed(1)
    inputs = {shape: spec.inputs(spec.config, shape, device, dtype, generator) for shape in shapes}
    expected: dict[Shape, tuple[torch.Tensor, ...]] = {}
    expected_compiled: dict[Shape, tuple[torch.Tensor, ...]] = {}
    flops: dict[Shape, int] = {}
    # FLOPs from the reference before anything is compiled: running a compiled model under FlopCounterMode
    # left diffusers' compiled blocks running eagerly afterwards (measured: "compiled" at eager speed).
    with torch.inference_mode():
        for shape in shapes:
            flops[shape] = count_flops(functools.partial(reference, **inputs[shape][0]))
    native: nn.Module | None = None
    if inspect is not None:
        native = native_sharing_weights(spec, reference)
        with torch.inference_mode():
            report["inspect"] = inspect(reference, native, inputs[shapes[0]])
    states: dict[str, dict[str, Any]] = {"diffusers": {}, "ditto": {}}
    # Each ditto switch's effect: against the first ditto variant's output.
    first_ditto: dict[Shape, tuple[torch.Tensor, ...]] = {}
    for variant in variants:
        if deadline is not None and time.perf_counter() > deadline:
            report.setdefault("skipped", []).append(f"{variant.name}: over the time budget")
            log(f"[{spec.name}] skipping {variant.name}: over the time budget")
            continue
        if variant.library == "ditto" and native is None:
            native = native_sharing_weights(spec, reference)
        model = reference if variant.library == "diffusers" else native
        t_setup = time.perf_counter()
        apply_variant(model, variant, states[variant.library])
        for shape in shapes:
            kwargs = inputs[shape][0 if variant.library == "diffusers" else 1]
            try:
                run, out = _measure(model, kwargs, variant, shape, device, warmup, repeats, expected, flops)
            except Exception as exc:  # noqa: BLE001 (a failed variant is reported, the others still run)
                log(
                    f"[{spec.name}] {shape.label()} {variant.name} FAILED: {type(exc).__name__}: {exc}"[:2000]
                )
                report.setdefault("failures", []).append({"variant": variant.name, "error": repr(exc)[:2000]})
                continue
            _compare(run, variant, out, expected_compiled, first_ditto, shape, states["ditto"])
            report["runs"].append(run)
            log(
                f"[{spec.name}] {shape.label():28s} {variant.name:28s} {run['ms']:9.1f} ms "
                f"{run['tflops_per_s']:6.1f} TFLOP/s cos {run['cosine']:.6f} relL2 {run['rel_l2']:.2e} "
                f"(first call {run['first_call_s']:.1f} s, setup {time.perf_counter() - t_setup:.1f} s)"
            )
            if variant.name in profile_variants and device.type == "cuda":
                with torch.inference_mode():
                    totals, top = profile(lambda: model(**kwargs))  # noqa: B023 (called right here)
                report["profiles"][f"{variant.name} {shape.label()}"] = {"totals_ms": totals, "top": top}
                log(f"profile {variant.name} {shape.label()}: {totals}\n{top}")
            if on_update:
                on_update(report)
    del native, reference
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return report


def graphed_forward(model: nn.Module, kwargs: dict[str, Any]) -> Callable[[], tuple[torch.Tensor, ...]]:
    """`model(**kwargs)` through a PassGraphs of its own: the first call runs eagerly, the second records, the
    rest copy the tensor arguments into the graph's buffers and replay. Other arguments are fixed."""
    from ditto.acceleration.cuda_graph import PassGraphs

    names = [name for name, value in kwargs.items() if isinstance(value, torch.Tensor)]
    fixed = {name: value for name, value in kwargs.items() if name not in names}
    graphs = PassGraphs(enabled=True)

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return outputs(model(**fixed, **dict(zip(names, tensors, strict=True))))

    return lambda: graphs.call("forward", run, *(kwargs[name] for name in names))


@torch.inference_mode()
def _measure(
    model: nn.Module,
    kwargs: dict[str, Any],
    variant: Variant,
    shape: Shape,
    device: torch.device,
    warmup: int,
    repeats: int,
    expected: dict[Shape, tuple[torch.Tensor, ...]],
    flops: dict[Shape, int],
) -> tuple[dict[str, Any], tuple[torch.Tensor, ...]]:
    """Time one variant at one shape; the first run of a shape (diffusers eager) is the parity reference."""

    def fn() -> Any:
        return model(**kwargs)

    graphed = variant.cuda_graph and device.type == "cuda"  # on the CPU the variant runs plain
    if graphed:
        fn = graphed_forward(model, kwargs)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_first = time.perf_counter()
    out = outputs(fn())  # the first call compiles, for compiled variants
    if graphed:
        out = outputs(fn())  # the second records the graph: neither is timed
    sync(device)
    first_s = time.perf_counter() - t_first
    if shape not in expected:
        expected[shape] = tuple(t.clone() for t in out)
    if shape not in flops:
        flops[shape] = count_flops(fn)
    warm, reps = (1, 3) if variant.quick else (warmup, repeats)
    times = time_ms(fn, device, max(warm - 1, 0), reps)  # the first call above was a warm-up too
    out = outputs(fn())
    ms = statistics.median(times)
    run = {
        "variant": variant.name, **asdict(variant), "shape": asdict(shape), "label": shape.label(),
        "ms": ms, "ms_all": times, "first_call_s": first_s, "flops": flops[shape],
        "tflops_per_s": flops[shape] / (ms * 1e-3) / 1e12,
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "fused_applied": bool(getattr(model, "fuse_projections", None)) and variant.fused,
        "attention_used": _attention_in_use(variant),
        **parity(expected[shape], out),
    }  # fmt: skip
    return run, out


def _compare(
    run: dict[str, Any],
    variant: Variant,
    out: tuple[torch.Tensor, ...],
    expected_compiled: dict[Shape, tuple[torch.Tensor, ...]],
    first_ditto: dict[Shape, tuple[torch.Tensor, ...]],
    shape: Shape,
    ditto_state: dict[str, Any],
) -> None:
    """The parity fields beyond diffusers eager: against diffusers compiled (bf16 rounding differs between
    eager and compiled kernels: diffusers' own compiled output moves by ~1e-2 relative L2 at random weights),
    and for ditto against its first variant (0 and bit-equal: an exact switch) with the switches it reached."""
    if variant.library == "diffusers" and variant.compile:
        expected_compiled[shape] = out
    elif shape in expected_compiled and variant.compile:
        run.update({f"vs_compiled_{k}": v for k, v in parity(expected_compiled[shape], out).items()})
    if variant.library == "ditto":
        switches = ("gelu_epilogue_layers", "rope_modules", "fused_qk_rope_layers")
        run.update({k: ditto_state.get(k) for k in switches})
        first = first_ditto.setdefault(shape, out)
        run["vs_first_ditto_rel_l2"] = parity(first, out)["all_rel_l2"]
        run["vs_first_ditto_bit_equal"] = all(torch.equal(a, b) for a, b in zip(first, out))


def _attention_in_use(variant: Variant) -> list[str] | None:
    """ditto's backend order as it really was (fa4 drops out where its package cannot load)."""
    from ditto.layers.attention import attention_backends

    return attention_backends() if variant.library == "ditto" else None


def add_ratios(report: dict[str, Any]) -> None:
    """Per run: speed relative to diffusers eager and diffusers compiled on the same shape (>1 = faster)."""
    for run in report["runs"]:
        for base in ("diffusers-eager", "diffusers-compiled"):
            ref = [r for r in report["runs"] if r["variant"] == base and r["label"] == run["label"]]
            if ref:
                run[f"speedup_vs_{base}"] = ref[0]["ms"] / run["ms"]


def table(reports: list[dict[str, Any]]) -> str:
    header = (
        f"{'model':16s} {'shape':28s} {'variant':28s} {'ms':>9s} {'TFLOP/s':>8s} {'vs eager':>8s} "
        f"{'vs comp':>8s} {'cosine':>9s} {'rel L2':>9s} {'relL2 vs comp':>13s}"
    )
    lines = [header, "-" * len(header)]
    for report in reports:
        for r in report["runs"]:
            lines.append(
                f"{report['model']:16s} {r['label']:28s} {r['variant']:28s} {r['ms']:9.1f} "
                f"{r['tflops_per_s']:8.1f} {r.get('speedup_vs_diffusers-eager', float('nan')):8.2f} "
                f"{r.get('speedup_vs_diffusers-compiled', float('nan')):8.2f} {r['cosine']:9.6f} {r['rel_l2']:9.2e} {r.get('vs_compiled_rel_l2', float('nan')):13.2e}"
            )
    return "\n".join(lines)
