"""STG prefix reuse on one GPU: one official-guidance step of LTX-2 (CFG, STG at the official block, modality
isolation, rescale 0.7) timed three ways on the same random-weight transformer and inputs:

* "pair": the layout before prefix reuse (the CFG pair as one batch, the STG pass run whole);
* "four-whole": the four passes as separate calls (the official layout), the STG pass run whole;
* "four-shared": the same four calls, the STG pass resumed from the conditional pass at its first perturbed
  block (block 29 of 48 for LTX-2, 28 for 2.3): ditto's default.

"four-shared" must equal "four-whole" bit for bit (checked and reported); "pair" differs by rounding only
(a batched row rounds differently). CUDA-event timing, 1 warm-up + `--repeats` runs per variant, one JSON
report (GPU, date, commit) in --out.

    PYTHONPATH=src python -m benchmarks.gpu_stg_prefix --out benchmarks/results
    PYTHONPATH=src python -m benchmarks.gpu_stg_prefix --tiny --device cpu --out /tmp/x   # the CPU check

Expected on an H200 (bf16, eager, 768x512x121 and 1280x704x121 of LTX-2.0): about 3 minutes, most of it
building the 19B transformer; `--sizes` and `--repeats` cut it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.driver import current_commit, environment
from benchmarks.harness.full_size import build, fill_normal
from benchmarks.harness.measure import time_ms

SIZES = ("768x512x121", "1280x704x121")
TINY_SIZES = ("64x64x9",)
VARIANTS = ("pair", "four-whole", "four-shared")


def build_transformer(version: str, tiny: bool, device: torch.device, dtype: torch.dtype):
    from ditto.models.ltx2.transformer import LTX2Transformer

    config: dict[str, Any] = {}
    if tiny:
        from ditto.tiny.ltx2 import transformer_config

        config = transformer_config(version)
    elif version == "2.3":
        # The LTX-2.3 additions (gated attention, prompt modulation; caption projection in the connectors).
        config = dict(
            gated_attn=True, cross_attn_mod=True, audio_gated_attn=True, audio_cross_attn_mod=True,
            use_prompt_embeddings=False,
        )  # fmt: skip
    transformer = fill_normal(build(lambda: LTX2Transformer(**config), device, dtype))
    transformer.stg_enabled = True  # as the pipeline sets it: the official guider always perturbs
    return transformer


def step_inputs(transformer, size: str, version: str, device: torch.device, share: bool):
    """DenoiseInputs of one official-guidance step at `size` (WxHxF), random latents and prompts."""
    from ditto.pipelines.ltx2.denoise import DenoiseInputs
    from ditto.pipelines.ltx2.latents import LatentShape
    from ditto.pipelines.ltx2.text import PromptEmbeddings
    from ditto.sampling.guidance import GuiderParams
    from ditto.sampling.schedules import ltx2_sigmas

    width, height, frames = (int(v) for v in size.split("x"))
    config = transformer.config
    shape = LatentShape(
        frames=(frames - 1) // 8 + 1, height=height // 32, width=width // 32, channels=config.in_channels,
        audio_frames=round(frames / 24 * 25), audio_channels=config.audio_in_channels // 16, audio_mel_bins=16,
    )  # fmt: skip
    depth = len(transformer.transformer_blocks)
    block = (28 if version == "2.3" else 29) if depth > 29 else depth - 1
    generator = torch.Generator(device=device).manual_seed(0)

    def randn(*dims: int) -> torch.Tensor:
        return torch.randn(*dims, generator=generator, device=device)

    text = 1024 if depth > 2 else 16
    widths = (transformer.inner_dim, transformer.audio_inner_dim)
    if transformer.use_prompt_embeddings:
        widths = (config.caption_channels, config.caption_channels)
    mask = torch.ones(1, text, dtype=torch.long, device=device)
    dtype = next(transformer.parameters()).dtype  # the pipeline hands the model its embeddings in its dtype
    prompts = [
        PromptEmbeddings(randn(1, text, widths[0]).to(dtype), randn(1, text, widths[1]).to(dtype), mask)
        for _ in range(2)
    ]
    sigmas = ltx2_sigmas(40)
    return DenoiseInputs(
        video=randn(1, shape.video_tokens, config.in_channels),
        audio=randn(1, shape.audio_frames, config.audio_in_channels),
        positive=prompts[0],
        negative=prompts[1],
        sigmas=sigmas.to(device),
        host_sigmas=sigmas.tolist(),
        shape=shape,
        frame_rate=24.0,
        video_guider=GuiderParams(3.0, 1.0, 3.0, 0.7, (block,)),
        audio_guider=GuiderParams(7.0, 1.0, 3.0, 0.7, (block,)),
        share_prefix=share,
    )


def denoiser_for(transformer, dtype: torch.dtype, inputs, variant: str):
    from ditto.pipelines.ltx2.denoise import Denoiser
    from ditto.pipelines.ltx2.text import concat_embeddings

    denoiser = Denoiser(
        transformer, dtype, dataclasses.replace(inputs, share_prefix=variant == "four-shared")
    )
    if variant == "pair":  # the layout before prefix reuse: the CFG pair batched, the STG pass whole
        denoiser.passes = dataclasses.replace(denoiser.passes, split=False, branch_at=None)
        denoiser.pair = concat_embeddings(inputs.negative, inputs.positive)
    return denoiser


def measure_size(transformer, size: str, args, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    inputs = step_inputs(transformer, size, args.version, device, share=True)
    row: dict[str, Any] = {"video_tokens": inputs.shape.video_tokens, "ms": {}, "outputs": {}}
    outputs = {}
    for variant in VARIANTS:
        denoiser = denoiser_for(transformer, dtype, inputs, variant)
        at, sigma = denoiser.at(1), inputs.sigmas[1]
        step = lambda d=denoiser, s=sigma, a=at: d.combined_x0(inputs.video, inputs.audio, s, a)  # noqa: E731
        with torch.no_grad():
            outputs[variant] = step()
            times = time_ms(step, device, warmup=1, repeats=args.repeats)
        row["ms"][variant] = statistics.median(times)
        print(f"{size} {variant}: {row['ms'][variant]:.1f} ms per guided step", flush=True)
    shared, whole, pair = outputs["four-shared"], outputs["four-whole"], outputs["pair"]
    row["shared_equals_whole_bitwise"] = all(torch.equal(a, b) for a, b in zip(shared, whole, strict=True))
    row["pair_vs_whole_max_abs"] = max(float((a - b).abs().max()) for a, b in zip(pair, whole, strict=True))
    row["speedup_shared_vs_whole"] = row["ms"]["four-whole"] / row["ms"]["four-shared"]
    row["speedup_shared_vs_pair"] = row["ms"]["pair"] / row["ms"]["four-shared"]
    del row["outputs"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", default="2.0", choices=("2.0", "2.3"))
    parser.add_argument("--sizes", help=f"comma list of WxHxF (default {','.join(SIZES)})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="the tiny 2-block model (CPU check)")
    parser.add_argument("--compile", action="store_true", help="regional torch.compile of the blocks")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), help="default: bfloat16 on cuda, float32 on cpu"
    )
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("float32" if device.type == "cpu" else "bfloat16"))
    sizes = args.sizes.split(",") if args.sizes else (TINY_SIZES if args.tiny else SIZES)
    transformer = build_transformer(args.version, args.tiny, device, dtype)
    if args.compile:
        transformer.compile_blocks()
    report: dict[str, Any] = environment(device, current_commit(), "tiny" if args.tiny else "full")
    report.update(benchmark="stg-prefix-reuse", version=args.version, compile=args.compile, dtype=str(dtype))
    report["method"] = (
        f"one guided step (Denoiser.combined_x0 at step 1 of 40), CUDA events, 1 warm-up + median of {args.repeats};"
        " one random N(0, 0.02) transformer and one set of random inputs for every variant"
    )
    report["sizes"] = {size: measure_size(transformer, size, args, device, dtype) for size in sizes}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{report['date']}-{report['gpu'].replace(' ', '-')}-stg-prefix-{args.version}"
    path = out / f"{name}{'-tiny' if args.tiny else ''}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return 0 if all(row["shared_equals_whole_bitwise"] for row in report["sizes"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
