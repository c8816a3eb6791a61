"""LTX-2 19B two-stage text-to-video+audio, whole pipeline, random weights, built in memory.

ditto's LTX2Pipeline takes its components as objects (LTX2Components), so nothing goes through disk:
the native transformer and connectors, Gemma-3 12B, the video VAE, audio VAE + vocoder and the x2 latent
upsampler are constructed on the GPU at their published configs. The distilled LoRA is random at the
published rank, kept in host memory as a file read by `read_lora` would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.harness.full_size import build, fill_normal, offline_tokenizer

# gemma-3-12b-it config.json (huggingface.co/google/gemma-3-12b-it): the text model LTX-2 reads, and the
# SigLIP vision tower that Gemma3ForConditionalGeneration carries (unused for text, but resident).
GEMMA3_12B: dict[str, Any] = dict(
    text_config=dict(
        vocab_size=262208, hidden_size=3840, intermediate_size=15360, num_hidden_layers=48,
        num_attention_heads=16, num_key_value_heads=8, head_dim=256, sliding_window=1024,
        query_pre_attn_scalar=256, max_position_embeddings=131072,
        rope_scaling={"rope_type": "linear", "factor": 8.0},
    ),
    vision_config=dict(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
        image_size=896, patch_size=14,
    ),
    mm_tokens_per_image=256,
)  # fmt: skip
# diffusers' scripts/convert_ltx2_to_diffusers.py, version 2.0: the class defaults except a non-causal decoder
# and the compression ratios, which must be given: left None, the class derives 64x spatial and 16x temporal
# from its block flags (it counts the separate spatial and temporal stages as two), so every latent grid
# would have 8x fewer tokens than the real VAE's 32x / 8x.
VIDEO_VAE: dict[str, Any] = dict(
    decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8
)
# Transformer, connectors, audio VAE, vocoder, upsampler: the diffusers/ditto class defaults are LTX-2 2.0.
DISTILLED_LORA_RANK = 384  # ltx-2-19b-distilled-lora-384.safetensors
LORA_NAME = "random-distilled-lora-r384"
CPU = torch.device("cpu")


def _configs(tiny: bool, tiny_layers: int = 2) -> dict[str, dict[str, Any]]:
    if not tiny:
        return dict(transformer={}, connectors={}, vae=VIDEO_VAE, audio_vae={}, vocoder={}, upsampler={})
    from ditto.tiny import ltx2 as t

    return dict(
        transformer=t.transformer_config("2.0", tiny_layers), connectors=t.connector_config("2.0"),
        vae=t.VIDEO_VAE_CONFIG, audio_vae=t.AUDIO_VAE_CONFIG, vocoder=t.VOCODER_CONFIG,
        upsampler=t.UPSAMPLER_CONFIG,
    )  # fmt: skip


def _gemma(tiny: bool, tokenizer: Any, device: torch.device, dtype: torch.dtype) -> nn.Module:
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    if tiny:
        from ditto.tiny.ltx2 import gemma_model

        return build(lambda: gemma_model(len(tokenizer)), device, dtype)
    config = Gemma3Config(**GEMMA3_12B)
    return build(lambda: Gemma3ForConditionalGeneration(config), device, dtype)


def build_ltx2_components(device: torch.device, dtype: torch.dtype, tiny: bool = False, tiny_layers: int = 2):
    """LTX2Components of the published LTX-2 (2.0) layout with random weights (tiny widths with tiny=True,
    and `tiny_layers` transformer blocks)."""
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    from ditto.models.ltx2.connector import LTX2TextConnectors
    from ditto.models.ltx2.transformer import LTX2Transformer
    from ditto.pipelines.ltx2.components import LTX2Components
    from ditto.tiny.ltx2 import SCHEDULER_CONFIG
    from ditto.tiny.tokenizers import save_gemma_tokenizer

    configs = _configs(tiny, tiny_layers)
    tokenizer = offline_tokenizer(save_gemma_tokenizer)
    transformer = fill_normal(build(lambda: LTX2Transformer(**configs["transformer"]), device, dtype))
    # The official guider perturbs self-attention at the STG blocks (as load_components sets it).
    transformer.stg_enabled = True
    connectors = fill_normal(
        build(lambda: LTX2TextConnectors(**configs["connectors"]), device, dtype), seed=1
    )
    return LTX2Components(
        tokenizer=tokenizer,
        text_encoder=_gemma(tiny, tokenizer, device, dtype),
        connectors=connectors,
        transformer=transformer,
        vae=build(lambda: AutoencoderKLLTX2Video(**configs["vae"]), device, dtype),
        audio_vae=build(lambda: AutoencoderKLLTX2Audio(**configs["audio_vae"]), device, dtype),
        # The vocoder runs in float32, as the official code does (and load_components loads it).
        vocoder=build(lambda: LTX2Vocoder(**configs["vocoder"]), device, torch.float32),
        scheduler_config=dict(SCHEDULER_CONFIG),
        version="2.0",
        dtype=dtype,
        device=device,
        # Built on the CPU: its blur kernel is an outer product of integer tensors, which CUDA cannot do.
        latent_upsampler=build(lambda: LTX2LatentUpsamplerModel(**configs["upsampler"]), CPU, dtype).to(
            device
        ),
        distilled_lora=Path(LORA_NAME),  # a name only: the pipeline is handed the LoRA in memory below
    )


def random_distilled_lora(transformer: nn.Module, rank: int, seed: int = 8):
    """A LoraFile on every linear layer of the transformer blocks and the input projection (what the
    official distilled LoRA touches), factors drawn on the weights' device and kept in host memory, as
    `read_lora` leaves a file's tensors. Scaled so the fused delta is small next to N(0, 0.02) weights."""
    from ditto.loading.lora import LoraFile, LoraPair

    device = next(transformer.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    std = (2e-3 / rank**0.5) ** 0.5  # each entry of up @ down has std ~ 2e-3
    pairs = {}
    for name, module in transformer.named_modules():
        if not isinstance(module, nn.Linear) or not (
            name.startswith("transformer_blocks.") or name == "proj_in"
        ):
            continue
        out_features, in_features = module.weight.shape
        down = torch.empty(rank, in_features, device=device, dtype=module.weight.dtype).normal_(
            0, std, generator=generator
        )
        up = torch.empty(out_features, rank, device=device, dtype=module.weight.dtype).normal_(
            0, std, generator=generator
        )
        pairs[f"transformer.{name}"] = LoraPair(down.cpu(), up.cpu(), 1.0)
    return LoraFile(LORA_NAME, pairs)


def build_ltx2(
    device: torch.device,
    dtype: torch.dtype,
    tiny: bool = False,
    lora_rank: int = DISTILLED_LORA_RANK,
    tiny_layers: int = 2,
):
    """ditto's LTX2Pipeline on in-memory components, with the random distilled LoRA ready for stage 2."""
    from ditto.pipelines.ltx2.pipeline import LTX2Pipeline

    pipe = LTX2Pipeline(build_ltx2_components(device, dtype, tiny, tiny_layers))
    # Handing the pipeline the LoRA in memory skips writing ~8 GB of random tensors to disk only to read them back.
    pipe.distilled.use_file(random_distilled_lora(pipe.components.transformer, 4 if tiny else lora_rank))
    return pipe


def stage_targets(pipe) -> list[tuple[object, str, str]]:
    """The stages the pipeline's own timer does not separate: the two decoders, the distilled LoRA's
    attach/detach (side path, the default) or fuse/unfuse (distilled_lora_mode="fuse"), and the one-time
    move of the side factors to the device (`prepare`: in the warm-up, so 0 calls in a timed run)."""
    c = pipe.components
    return [
        (c.text_encoder, "forward", "gemma"),
        (c.connectors, "forward", "connectors"),
        (c.latent_upsampler, "forward", "upsampler"),
        (c.vae, "decode", "decode_video"),
        (c.audio_vae, "decode", "decode_audio_vae"),
        (c.vocoder, "forward", "vocoder"),
        (pipe.loras, "fuse", "lora_fuse"),
        (pipe.loras, "unfuse_last", "lora_unfuse"),
        (pipe.lora_side, "prepare", "lora_side_prepare"),
        (pipe.lora_side, "attach", "lora_side_attach"),
        (pipe.lora_side, "detach", "lora_side_detach"),
    ]
