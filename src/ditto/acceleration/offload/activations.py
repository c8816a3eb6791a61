"""Activation-memory estimates the planner reserves per stage, besides the weights: deliberately on the high
side (an estimate too low means running out of device memory; too high, a block more streamed). Measured
anchors (shared/notes/gpu-anchors.md, H100/H200, bf16) are named beside each rule; the GPU benchmark
(benchmarks/gpu_offload.py) reports the peaks actually read, stage by stage, against the plan.
"""

from __future__ import annotations

# A DiT block's live activations per token row, in values of the model's width: the residual stream, its
# norm, q/k/v and the attention output, the 4x feed-forward's input and output (8), AdaLN modulations (6-9)
# and float32 RoPE tables (4): ~28 values. Anchor: LTX-2 at 1280x704x121, CFG pair (2 x 14,080 rows, width
# 4,096) peaked 4.6 GiB above its weights; this rule says 6.0 GiB.
DIT_VALUES_PER_ROW = 28
# Untiled VAE decoding, bytes per output pixel (and frame) per channel of the decoder's last convolution
# (its width at full resolution): LTX-2's video VAE (128 channels) decoded 1280x704x121 with 14.2 GiB, 140 B
# per pixel and frame, ~1.1 B per channel. An image VAE decodes one frame without a temporal window; it is
# given 8 B per channel (1 KiB per pixel for FLUX.2's 128 channels: about five full-size bf16 maps live).
VIDEO_VAE_BYTES_PER_CHANNEL = 1.1
IMAGE_VAE_BYTES_PER_CHANNEL = 8


def dit_rows(rows: int, width: int, itemsize: int = 2) -> int:
    """A DiT pass over `rows` token rows (batch x tokens) of `width` channels."""
    return rows * width * DIT_VALUES_PER_ROW * itemsize


def text_encoder(
    prompts: int, tokens: int, hidden: int, kept_states: int, intermediate: int, itemsize: int = 2
) -> int:
    """A transformers text encoder over `prompts` x `tokens`: the hidden states it returns (`kept_states` of
    them, twice: the tuple and the stacked copy the pipelines make) and one layer's MLP (three intermediate
    rows). Anchor: Gemma-3 12B, 2 x 1,024 tokens, all 49 states: 1.8 GiB measured, 1.6 GiB by this rule."""
    states = prompts * tokens * hidden * kept_states * itemsize * 2
    return states + prompts * tokens * intermediate * itemsize * 3


def vae_decode(pixels: int, vae: object, video: bool = False, itemsize: int = 2) -> int:
    """Decoding (or encoding) `pixels` pixels (batch x frames x height x width) without tiling, with `vae`
    (the rates are bf16 ones; `itemsize` scales them)."""
    rate = VIDEO_VAE_BYTES_PER_CHANNEL if video else IMAGE_VAE_BYTES_PER_CHANNEL
    return int(pixels * rate * output_width(vae) * itemsize / 2)


def output_width(vae: object) -> int:
    """The channels of a diffusers VAE decoder's last convolution (its width at full resolution)."""
    conv = vae.decoder.conv_out  # type: ignore[attr-defined]
    return getattr(conv, "conv", conv).in_channels
