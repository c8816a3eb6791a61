"""`python -m benchmarks.gpu_speed --tiny --device cpu`: every section of the one GPU call the issue-24
candidates get, on tiny configs, so that call cannot fail on a typo; the switches must leave float32
outputs unchanged (FP8 and Triton drop out on a CPU: the report says which order really ran)."""

import json
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def test_tiny_speed_run_covers_every_section(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "benchmarks.gpu_speed",
        "--tiny",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-speed-tiny.json")
    report = json.loads(path.read_text())
    assert not report["failures"] and not report["skipped"]
    assert set(report["section_s"]) == {"attention", "ltx2", "one-stage", "qwen", "klein"}

    timed = [row for row in report["attention"] if "ms" in row]
    assert {row["kernel"] for row in timed} == {
        "attention(): SDPA order, strided",
        "attention(): SDPA order, contiguous copies",
    }  # the CUDA-only kernels are listed as skipped, not dropped
    assert all(row["rel_l2_vs_first"] == 0.0 for row in timed)

    ltx2 = report["models"]["ltx2"]
    for library in ("diffusers", "ditto"):
        calls = ltx2["inspect"][library]
        # 2 blocks x (video self, audio self, 2 text cross, 2 audio<->video) attentions, batch 2
        assert sum(c["calls"] for c in calls) == 12 and all(c["sdpa_backend"] for c in calls)
    runs = {run["variant"]: run for run in ltx2["runs"]}
    assert set(runs) == {
        "diffusers-eager", "ditto-eager", "ditto-eager-fa3", "ditto-eager-full-rope", "ditto-eager-gelu-epilogue",
        "ditto-eager-fp8-attention", "ditto-eager-cudnn-contiguous", "ditto-eager-triton",
        "ditto-eager-fused-qk-rope", "ditto-eager-fa3-fused-qk-rope", "ditto-eager-fused-qk-rope-bhsd",
        "ditto-eager-default", "ditto-eager-default-graphs",
    }  # fmt: skip
    assert runs["ditto-eager-default-graphs"]["cuda_graph"]  # on the CPU it runs plain (graphs need CUDA)
    assert runs["ditto-eager-gelu-epilogue"]["gelu_epilogue_layers"] == 4  # video and audio, 2 blocks
    # the fused q/k RoPE kernel needs CUDA + Triton: on the CPU the switch reaches no layer (plain ops run)
    assert runs["ditto-eager-fused-qk-rope-bhsd"]["fused_qk_rope_layers"] == 0
    assert runs["ditto-eager-fused-qk-rope"]["fused_qk_rope"] == "bshd"
    assert runs["ditto-eager"]["rope_modules"] == 4
    for name, run in runs.items():
        assert run["rel_l2"] < 1e-5, (name, run["rel_l2"])  # float32, same weights: the switches are exact
    # on the CPU every switch is exact against ditto's default (the GELU epilogue and FP8 are CUDA-only)
    assert all(run["vs_first_ditto_bit_equal"] for name, run in runs.items() if name != "diffusers-eager")
    assert "ditto-eager-gelu-epilogue" not in {r["variant"] for r in report["models"]["klein"]["runs"]}
    assert not any("qk-rope" in r["variant"] for r in report["models"]["qwen"]["runs"])

    one_stage = report["one_stage"]
    assert one_stage["size"] == "192x128x9"
    for library in ("ditto", "diffusers"):
        assert set(one_stage[library]["total_s"]) == {"2", "4"} and "per_step_s" in one_stage[library]
    # the same guidance: diffusers batches the CFG pair (3 calls: pair, STG, isolation); ditto runs the four
    # passes apart, the STG pass resuming from the cond pass's prefix (pipelines/ltx2/denoise.py)
    assert one_stage["diffusers"]["transformer_calls_per_step"] == 3
    assert one_stage["ditto"]["transformer_calls_per_step"] == 4


def test_tiny_one_stage_run_times_both_libraries(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks.gpu_one_stage", "--tiny", "--device", "cpu", "--steps", "2",
        "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-one-stage-tiny.json")
    report = json.loads(path.read_text())
    assert set(report["runs"]) == {"192x128x9 ditto", "192x128x9 diffusers"}
    assert report["diffusers / ditto"]["192x128x9"] > 0
    assert report["guidance"]["spatio_temporal_guidance_blocks"] == [29]
    calls = {name.split()[-1]: run["transformer_calls_per_step"] for name, run in report["runs"].items()}
    assert calls == {"ditto": 4, "diffusers": 3}  # ditto: the four passes apart, STG from the cond prefix
