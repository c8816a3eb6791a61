"""Named lists of variants to time, and the shape syntax of the command line."""

from __future__ import annotations

from benchmarks.harness.measure import Variant
from benchmarks.harness.specs import Shape

CUDNN_FIRST = ("cudnn", "flash", "efficient", "math")
FA4_FIRST = ("fa4", *CUDNN_FIRST)  # FlashAttention-4 where its package loads; SDPA for masked calls

PRESETS: dict[str, list[Variant]] = {
    # The full ablation: what each step of the speed work buys.
    "ablation": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager-torch-default-attn", "ditto", attention=None, quick=True),
        Variant("ditto-eager-cudnn", "ditto", attention=CUDNN_FIRST, quick=True),
        Variant("ditto-eager-cudnn-fused", "ditto", fused=True, attention=CUDNN_FIRST),
        Variant("ditto-compiled-cudnn-fused", "ditto", compile=True, fused=True, attention=CUDNN_FIRST),
    ],
    # The table of record: both libraries eager and compiled; ditto with cuDNN attention and with FlashAttention-4.
    "record": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager", "ditto", attention=CUDNN_FIRST),
        Variant("ditto-compiled", "ditto", compile=True, attention=CUDNN_FIRST),
        Variant("ditto-eager-fa4", "ditto", attention=FA4_FIRST, quick=True),
        Variant("ditto-compiled-fa4", "ditto", compile=True, attention=FA4_FIRST),
    ],
    # Image models: fused projections measured too (no FA4 variants).
    "images": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager", "ditto", attention=CUDNN_FIRST),
        Variant("ditto-compiled", "ditto", compile=True, attention=CUDNN_FIRST),
        Variant("ditto-compiled-fused", "ditto", compile=True, fused=True, attention=CUDNN_FIRST),
    ],
    # FP8 block products against bf16. (Per-block CUDA graphs, compile mode "reduce-overhead", fail: every block
    # replays one graph, which overwrites the previous block's output; NOTES.md.)
    "fp8": [
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-compiled", "ditto", compile=True, attention=FA4_FIRST),
        Variant("ditto-compiled-fp8", "ditto", compile=True, fp8="rowwise", attention=FA4_FIRST),
        Variant(
            "ditto-compiled-fp8-tensorwise", "ditto", compile=True, fp8="tensorwise", attention=FA4_FIRST
        ),
    ],
    # Compiled against compiled only, ditto with cuDNN attention (no FA4 on the device): the before/after check
    # of a change that must not move speed, in the least device time.
    "compiled": [
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-compiled", "ditto", compile=True, attention=CUDNN_FIRST),
    ],
    # No compilation (fast on a CPU; the tests use it).
    "eager": [
        Variant("diffusers-eager", "diffusers"),
        Variant("ditto-eager", "ditto", attention=FA4_FIRST),
    ],
    # A user's quick check: both libraries eager and compiled, ditto with its default attention order.
    "quick": [
        Variant("diffusers-eager", "diffusers"),
        Variant("diffusers-compiled", "diffusers", compile=True),
        Variant("ditto-eager", "ditto", attention=FA4_FIRST),
        Variant("ditto-compiled", "ditto", compile=True, attention=FA4_FIRST),
    ],
}


def parse_shape(text: str) -> Shape:
    """WIDTHxHEIGHT[xFRAMES]:TEXT:BATCH, e.g. 1280x704x121:1024:2."""
    from ditto.errors import InvalidParameter

    try:
        size, text_tokens, batch = text.split(":")
        dims = [int(v) for v in size.split("x")]
        if len(dims) not in (2, 3):
            raise ValueError
        return Shape(dims[1], dims[0], dims[2] if len(dims) > 2 else 1, int(text_tokens), int(batch))
    except ValueError:
        raise InvalidParameter(
            "shape", text, "is not WIDTHxHEIGHT[xFRAMES]:TEXT_TOKENS:BATCH", "e.g. 1280x704x121:1024:2"
        ) from None
