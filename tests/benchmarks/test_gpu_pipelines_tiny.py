"""`python -m benchmarks.gpu_pipelines --tiny` on the CPU: the GPU script's every code path, so it cannot
rot between device runs (a typo found on the device costs a whole lease call)."""

import json
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def test_tiny_pipelines_run_and_write_a_report(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks.gpu_pipelines", "--tiny", "--device", "cpu", "--out", str(tmp_path),
        "--models", "flux2-klein,ltx2", "--repeats", "1", "--ltx2-steps", "3",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("*-pipelines-tiny.json")
    report = json.loads(path.read_text())
    assert not report.get("failures")

    klein = report["flux2-klein"]["variants"]
    assert set(klein) == {"ditto-eager", "diffusers-eager"}
    for variant in klein.values():
        assert {"text_encoder", "denoise", "vae_decode"} <= set(variant["split_ms"])
        assert variant["calls"]["denoise"] == 4  # 4 distilled steps, no CFG
    # Same modules, same seed: ditto's image is diffusers' image.
    assert report["flux2-klein"]["image_cosine"]["ditto-eager vs diffusers-eager"] > 0.9999

    ltx2 = report["ltx2"]["variants"]["ditto-eager"]
    assert ltx2["calls"]["transformer"] == 3 + 3  # stage 1 (CFG pair batched) + 3 distilled steps
    # The distilled LoRA beside the weights (the default): attached and detached once, no fusing.
    assert ltx2["calls"]["lora_side_attach"] == ltx2["calls"]["lora_side_detach"] == 1
    assert "lora_fuse" not in ltx2["calls"]
    assert {"denoise_stage_1", "upsample", "denoise_stage_2", "decode"} <= set(ltx2["stage_timer_s"])
    assert ltx2["extrapolated_40_steps_s"] > ltx2["total_ms"] / 1e3
    # tiny 192x128x9: VAE 32x/8x -> 2 frames of 4x6 at full size, 2x3 in stage 1
    assert report["ltx2"]["tokens"] == {
        "denoise_stage_1": 12,
        "denoise_stage_2": 48,
        "audio": report["ltx2"]["tokens"]["audio"],
    }


def test_full_size_ltx2_video_vae_compresses_as_the_real_one() -> None:
    """32x spatial, 8x temporal: the class's own derivation gives 64x / 16x, i.e. 8x fewer tokens in every
    stage, which once made a whole GPU run time the wrong shapes."""
    import torch
    from diffusers import AutoencoderKLLTX2Video

    from benchmarks.harness.full_size_ltx2 import VIDEO_VAE

    with torch.device("meta"):
        vae = AutoencoderKLLTX2Video(**VIDEO_VAE)
    assert (vae.spatial_compression_ratio, vae.temporal_compression_ratio) == (32, 8)
