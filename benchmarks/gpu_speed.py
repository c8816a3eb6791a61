"""Issue 24's speed candidates against ditto's current default and diffusers compiled, in one process, one GPU.

    PYTHONPATH=src python -m benchmarks.gpu_speed --out DIR --commit SHA            # all sections, ~8 min budget
    PYTHONPATH=src python -m benchmarks.gpu_speed --sections attention,ltx2 --out DIR
    PYTHONPATH=src python -m benchmarks.gpu_speed --tiny --device cpu --out DIR      # CPU smoke run (tests)

Sections, in this order (each goes into DIR/<date>-<gpu>-speed.json as it finishes; once --budget-s is
spent no new section or variant starts, and the JSON lists what was skipped):
- attention (~1 min on an H200, most of it compiling the Triton kernels): every candidate kernel alone at
  S = 14,080 and 6,144 (B = 2, 32 heads, head dim 128, bf16), through the path the model takes.
- ltx2 (~4 min): LTX-2 19B, 1280x704x121, CFG pair. First the census: every attention call of one eager
  forward of each library (op, SDPA backend picked, shapes, strides, mask). Then the variants (compiled,
  1 warm-up + 3 timed, parity against diffusers eager and compiled): diffusers; ditto as it is now (RoPE
  from half-width tables, the default since this change); ditto with full-width tables (the previous
  default: the tables' gain); + GELU in the up-projection's epilogue; + q/k norm and RoPE in one Triton
  kernel (writing [B, S, H*D], and dense [B, H, S, D] for cuDNN); + FP8 attention; cuDNN on dense
  [B, H, S, D] copies; the Triton kernel in bf16; FP8 products (today's FP8 option) without and with FP8
  attention.
- one-stage (~3 min): one official-guidance step (4 passes) at 768x512x121, ditto against diffusers'
  LTX2Pipeline on the same modules: whole requests of 2 and 4 steps, the step = their difference / 2
  (compiled, no CUDA graphs: ditto records graphs for loops of 10+ steps only). The full 40-step run is
  benchmarks/gpu_one_stage.py.
- qwen, klein (~1.5 min each): the same variants where they apply (no RoPE tables of LTX-2's kind, and
  FLUX.2 has no GELU feed-forward).

What decides a default (benchmarks/NOTES.md, 2026-12-02): a bf16 switch becomes the default where it is
faster and stays within 1e-2 relative L2 of diffusers compiled; FP8 attention stays opt-in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import torch

from benchmarks.harness.driver import current_commit, environment, report_path
from benchmarks.harness.measure import Variant, add_ratios, run_case, table
from benchmarks.harness.presets import CUDNN_FIRST, FA4_FIRST
from benchmarks.harness.specs import SPECS

SECTIONS = ("attention", "ltx2", "one-stage", "qwen", "klein")
MODELS = {"ltx2": "ltx2", "qwen": "qwen-image", "klein": "flux2-klein-4b"}
TINY_MODELS = {"ltx2": "tiny-ltx2", "qwen": "tiny-qwen-image", "klein": "tiny-flux2"}


def variants(model: str, compiled: bool) -> list[Variant]:
    """The candidates, most telling first (a budget cut drops the last)."""
    c = dict(compile=compiled, quick=True)
    compile_default = dict(attention=("fa3", *CUDNN_FIRST), gelu_epilogue=True, fused_qk_rope="bshd", **c)
    ditto = [
        Variant("ditto-compiled", "ditto", attention=FA4_FIRST, **c),
        Variant("ditto-compiled-fa3", "ditto", attention=("fa3", *CUDNN_FIRST), **c),
        # what compile=True runs (engine.use_compiled_fusions: both fusions reach only the models that have
        # their layers), and the same forward recorded as one CUDA graph and replayed, as a graphed pass runs
        Variant("ditto-compiled-default", "ditto", **compile_default),
        Variant("ditto-compiled-default-graphs", "ditto", cuda_graph=True, **compile_default),
        Variant("ditto-compiled-full-rope", "ditto", attention=FA4_FIRST, compact_rope=False, **c),
        Variant("ditto-compiled-gelu-epilogue", "ditto", attention=FA4_FIRST, gelu_epilogue=True, **c),
        Variant("ditto-compiled-fused-qk-rope", "ditto", attention=FA4_FIRST, fused_qk_rope="bshd", **c),
        # dense [B, H, S, D] q/k from the kernel: for cuDNN (FA4 would copy them back to [B, S, H, D])
        Variant("ditto-compiled-fa3-fused-qk-rope", "ditto", attention=("fa3", *CUDNN_FIRST), fused_qk_rope="bshd", **c),
        Variant("ditto-compiled-fused-qk-rope-bhsd", "ditto", attention=CUDNN_FIRST, fused_qk_rope="bhsd", **c),
        Variant("ditto-compiled-fp8-attention", "ditto", attention=("fp8", *CUDNN_FIRST), **c),
        Variant("ditto-compiled-cudnn-contiguous", "ditto", attention=CUDNN_FIRST, sdpa_layout="contiguous", **c),
        Variant("ditto-compiled-triton", "ditto", attention=("triton", *CUDNN_FIRST), **c),
    ]  # fmt: skip
    if compiled:  # FP8 attention next to FP8 products (the FP8 default of today first), GPU only
        fp8 = dict(fp8="rowwise", **c)
        ditto.append(Variant("ditto-compiled-fp8-products", "ditto", attention=FA4_FIRST, **fp8))
        ditto.append(
            Variant("ditto-compiled-fp8-products-fa3", "ditto", attention=("fa3", *CUDNN_FIRST), **fp8)
        )
        ditto.append(
            Variant("ditto-compiled-fp8-products-attention", "ditto", attention=("fp8", *CUDNN_FIRST), **fp8)
        )
    # (the fused q/k RoPE is LTX-2's: its norm spans all heads; Klein and Qwen norm per head)
    not_here = {"klein": ("full-rope", "gelu", "qk-rope"), "qwen": ("full-rope", "qk-rope"), "ltx2": ()}
    ditto = [v for v in ditto if not any(word in v.name for word in not_here[model])]
    if not compiled:  # the CPU smoke run: the same switches, eager (names say so)
        ditto = [
            Variant(v.name.replace("compiled", "eager"), **{**_fields(v), "compile": False}) for v in ditto
        ]
        return [Variant("diffusers-eager", "diffusers"), *ditto]
    return [Variant("diffusers-compiled", "diffusers", compile=True), *ditto]


def _fields(variant: Variant) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(variant).items() if k != "name"}


def census_both(reference, native, inputs) -> dict[str, Any]:  # noqa: ANN001 (run_case's inspect hook)
    """Which kernel each in-model attention call gets, eager, in each library (ditto with its default order)."""
    from benchmarks.harness.attention_bench import census
    from ditto.layers.attention import set_attention_backends

    set_attention_backends(FA4_FIRST)
    return {
        "diffusers": census(lambda: reference(**inputs[0])),
        "ditto": census(lambda: native(**inputs[1])),
    }


def run_models(args: argparse.Namespace, name: str, report: dict[str, Any], save, deadline: float) -> None:  # noqa: ANN001
    spec = SPECS[(TINY_MODELS if args.tiny else MODELS)[name]]
    shapes = [spec.default_shape]
    chosen = variants(name, compiled=not args.tiny)
    if args.variants:
        wanted = args.variants.split(",")
        chosen = [v for v in chosen if v.library == "diffusers" or v.name in wanted]
    model_report = run_case(
        spec, shapes, chosen, args.device, dtype=args.dtype, warmup=1, repeats=3,
        profile_variants=tuple(filter(None, args.profile.split(","))),
        on_update=lambda r: (report["models"].__setitem__(name, r), save()),
        inspect=census_both if name == "ltx2" or args.tiny else None, deadline=deadline,
    )  # fmt: skip
    add_ratios(model_report)
    report["models"][name] = model_report


def run_attention(args: argparse.Namespace, report: dict[str, Any]) -> None:
    from benchmarks.harness.attention_bench import kernel_table

    seqs = (64, 48) if args.tiny else (14_080, 6_144)  # LTX-2 at 1280x704x121 and at 768x512x121
    shape = dict(heads=2, dim=16) if args.tiny else {}
    report["attention"] = kernel_table(args.device, seqs, dtype=args.dtype, **shape)


def run_one_stage(args: argparse.Namespace, report: dict[str, Any], save) -> None:  # noqa: ANN001
    from benchmarks.harness import one_stage
    from ditto.layers.attention import set_attention_backends, use_fast_attention

    set_attention_backends(None)  # what an earlier section's last variant chose must not carry over
    use_fast_attention(args.device)  # ditto's default, as Engine.from_pretrained sets it
    size = one_stage.Size.parse("192x128x9" if args.tiny else "768x512x121")
    ditto, reference = one_stage.build_pair(args.device, args.dtype, args.tiny)
    if not args.tiny:
        one_stage.compile_both(ditto, reference, cuda_graphs=False)
    section = report["one_stage"] = {
        "size": size.label(), "guidance": one_stage.guidance(48), "compiled": not args.tiny,
        "steps": [2, 4], "method": "whole requests of 2 and 4 steps (median of 1); step = difference / 2",
    }  # fmt: skip
    modules = one_stage.transformers(ditto, reference)
    for library, run in one_stage.runners(ditto, reference, size).items():
        section[library] = one_stage.time_requests(run, args.device, (2, 4), 1, modules[library])
        print(f"[one-stage] {library}: {section[library]}", flush=True)
        save()
    if "per_step_s" in section["ditto"]:
        section["diffusers_per_step / ditto_per_step"] = (
            section["diffusers"]["per_step_s"] / section["ditto"]["per_step_s"]
        )


def speed_table(report: dict[str, Any]) -> str:
    """The numbers that decide: kernels alone, each model variant against diffusers compiled and against
    ditto's default, and the one-stage step."""
    lines = [f"{'attention kernel':58s} {'S':>6s} {'ms':>8s} {'TFLOP/s':>8s} {'relL2':>9s}"]
    for row in report.get("attention", []):
        figures = (
            f"{row['ms']:8.3f} {row['tflops_per_s']:8.1f} {row['rel_l2_vs_first']:9.2e}"
            if "ms" in row
            else row.get("skipped") or row.get("error", "")
        )
        lines.append(f"{row['kernel']:58s} {row['seq']:6d} {figures}")
    lines += ["", table(list(report["models"].values())), ""]
    lines.append(
        f"{'model':10s} {'variant':34s} {'ms':>9s} {'vs default':>10s} {'relL2 vs default':>17s} exact"
    )
    for name, model in report["models"].items():
        default = next((r["ms"] for r in model["runs"] if r["library"] == "ditto"), None)
        for r in (r for r in model["runs"] if r["library"] == "ditto"):
            lines.append(
                f"{name:10s} {r['variant']:34s} {r['ms']:9.1f} {default / r['ms']:10.3f} "
                f"{r['vs_first_ditto_rel_l2']:17.2e} {r['vs_first_ditto_bit_equal']}"
            )
    if report.get("one_stage"):
        lines += ["", f"one-stage step: {json.dumps(report['one_stage'], default=str)}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    parser.add_argument("--variants", default="", help="only these ditto variants (comma list of names)")
    # the fused q/k RoPE too: its two inductor kernels (statistics, apply + rotate) against the one Triton kernel
    parser.add_argument(
        "--profile", default="ditto-compiled,ditto-compiled-gelu-epilogue,ditto-compiled-fused-qk-rope"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), help="default: bfloat16 on cuda, float32 on cpu"
    )
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--commit", default=None)
    parser.add_argument("--budget-s", type=float, default=470.0, help="start no section/variant after this")
    args = parser.parse_args()
    args.device = torch.device(args.device)
    args.dtype = getattr(torch, args.dtype or ("bfloat16" if args.device.type == "cuda" else "float32"))
    os.environ.setdefault("TQDM_DISABLE", "1")
    # One compiled block code object serves every variant; each switch is a new guard set (a recompile).
    torch._dynamo.config.recompile_limit = 64
    started = time.perf_counter()
    deadline = started + args.budget_s
    report: dict[str, Any] = {
        **environment(args.device, args.commit or current_commit(), "speed"), "models": {}, "skipped": [],
        "failures": {},
    }  # fmt: skip
    out = report_path(args.out, report, "speed", args.tiny)

    def save() -> None:
        out.write_text(json.dumps(report, indent=1, default=str))

    for section in args.sections.split(","):
        if time.perf_counter() > deadline:
            report["skipped"].append(f"{section}: over the {args.budget_s:.0f} s budget")
            continue
        t0 = time.perf_counter()
        try:
            if section == "attention":
                run_attention(args, report)
            elif section == "one-stage":
                run_one_stage(args, report, save)
            else:
                run_models(args, section, report, save, deadline)
        except Exception as exc:  # noqa: BLE001 (a failed section must not lose the others' numbers)
            report["failures"][section] = f"{type(exc).__name__}: {exc}"[:3000]
            print(f"[{section}] FAILED: {type(exc).__name__}: {exc}"[:3000], flush=True)
        report.setdefault("section_s", {})[section] = time.perf_counter() - t0
        save()
        from benchmarks.harness.end_to_end import free_device

        free_device(args.device)
    print(speed_table(report))
    print(json.dumps({k: report.get(k) for k in ("skipped", "failures", "section_s")}, indent=1, default=str))
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
