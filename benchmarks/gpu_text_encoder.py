"""LTX-2's text encoding on one GPU: Gemma-3 12B (random weights, full size) over a CFG prompt pair.

    PYTHONPATH=src python -m benchmarks.gpu_text_encoder [--profile] [--out DIR]

Times, with CUDA-synced wall clocks (median of --repeats after a warm-up): the two prompts one call each
(as before 2026-11-23), both in one batch (ditto now), both with every token's logits computed (what
`logits_to_keep` saves), and the batch with Gemma's layers compiled part by part (what compile=True does,
`compile_decoder_layers`; its hidden states are checked against the eager ones); optionally a kernel
profile of the batched call, eager and compiled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from benchmarks.harness.end_to_end import PROMPT
from benchmarks.harness.full_size import offline_tokenizer
from benchmarks.harness.full_size_ltx2 import _gemma
from ditto.acceleration.compile import compile_decoder_layers
from ditto.pipelines.ltx2.text import gemma_hidden_states
from ditto.tiny.tokenizers import save_gemma_tokenizer


def timed(fn, repeats: int) -> float:
    fn()
    seconds = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1e3


def kernel_profile(run) -> dict[str, float]:
    from benchmarks.harness.measure import profile

    totals, top = profile(run)
    print(top)
    return totals


def klein_encoder_ms(device: torch.device, dtype: torch.dtype, repeats: int) -> dict[str, float]:
    """Klein's text encoding (Qwen3-4B's first 27 layers, one prompt padded to 512 tokens), eager and with
    its layers compiled part by part."""
    from benchmarks.harness.full_size_flux2 import _ditto_text_model, _qwen3
    from ditto.pipelines.flux2.text import KleinTextEncoder
    from ditto.tiny.tokenizers import save_qwen2_tokenizer

    tokenizer = offline_tokenizer(save_qwen2_tokenizer)
    full = _qwen3(False, tokenizer, device, dtype)
    encoder = KleinTextEncoder(tokenizer, _ditto_text_model(full, device, dtype), device)
    encode = lambda: encoder.encode_unique([PROMPT], 512, (9, 18, 27))  # noqa: E731
    result = {"eager": timed(encode, repeats)}
    eager = encode().float()
    compile_decoder_layers(encoder.model)
    result["layers compiled"] = timed(encode, repeats)
    compiled = encode().float()
    result["compiled_vs_eager_rel_l2"] = float((compiled - eager).norm() / eager.norm())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--klein", action="store_true", help="also time FLUX.2 Klein's Qwen3 encoder")
    args = parser.parse_args()
    device, dtype = torch.device("cuda"), torch.bfloat16
    klein = klein_encoder_ms(device, dtype, args.repeats) if args.klein else None
    torch.cuda.empty_cache()  # Klein's encoder is gone: room for Gemma
    tokenizer = offline_tokenizer(save_gemma_tokenizer)
    components = SimpleNamespace(
        tokenizer=tokenizer, text_encoder=_gemma(False, tokenizer, device, dtype), device=device, dtype=dtype
    )
    prompts, negative = [PROMPT], ["worst quality, blurry"]
    encode = lambda texts: gemma_hidden_states(components, texts, 1024)  # noqa: E731
    forward = components.text_encoder.forward

    def all_logits(**kwargs):
        kwargs.pop("logits_to_keep", None)
        return forward(**kwargs)

    report = {
        "gpu": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "ms": {
            "two calls": timed(lambda: (encode(prompts), encode(negative)), args.repeats),
            "one batch": timed(lambda: encode(prompts + negative), args.repeats),
        },
    }
    components.text_encoder.forward = all_logits
    report["ms"]["one batch, all logits"] = timed(lambda: encode(prompts + negative), args.repeats)
    components.text_encoder.forward = forward
    if args.profile:
        report["profile_totals_ms"] = kernel_profile(lambda: encode(prompts + negative))
    eager = encode(prompts + negative)[0].float()
    compile_decoder_layers(components.text_encoder)
    report["ms"]["one batch, layers compiled"] = timed(lambda: encode(prompts + negative), args.repeats)
    compiled = encode(prompts + negative)[0].float()
    report["compiled_vs_eager_rel_l2"] = float((compiled - eager).norm() / eager.norm())
    if args.profile:
        report["profile_totals_ms_compiled"] = kernel_profile(lambda: encode(prompts + negative))
    if klein is not None:
        report["klein_qwen3_27_layers_1x512_ms"] = klein
    print(json.dumps(report, indent=1))
    out = Path(args.out) / f"{report['date']}-{report['gpu'].replace(' ', '-')}-text-encoder.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
