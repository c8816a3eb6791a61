"""A tiny random-weight LTX-2 / LTX-2.3 checkpoint in diffusers format, built offline and deterministically.

Every component of the real pipeline is present (Gemma-3 text encoder + tokenizer, text connectors,
transformer, video VAE, audio VAE, vocoder, scheduler) with the real structure and tiny widths, so every
code path of loading and generation runs on a CPU in seconds. Its output is noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ditto.tiny.common import fill_random, write_json
from ditto.tiny.tokenizers import save_gemma_tokenizer

GEMMA_LAYERS = 2
GEMMA_HIDDEN = 32
VIDEO_LATENT_CHANNELS = 16
AUDIO_LATENT_CHANNELS = 4
MEL_BINS = 16  # audio VAE mel bins; latent mel bins = MEL_BINS / 4
AUDIO_TOKEN_CHANNELS = AUDIO_LATENT_CHANNELS * MEL_BINS // 4


def transformer_config(version: str, layers: int = 2) -> dict[str, Any]:
    config = dict(
        in_channels=VIDEO_LATENT_CHANNELS,
        out_channels=VIDEO_LATENT_CHANNELS,
        num_attention_heads=2,
        attention_head_dim=16,
        cross_attention_dim=32,
        audio_in_channels=AUDIO_TOKEN_CHANNELS,
        audio_out_channels=AUDIO_TOKEN_CHANNELS,
        audio_num_attention_heads=2,
        audio_attention_head_dim=8,
        audio_cross_attention_dim=16,
        num_layers=layers,
        caption_channels=GEMMA_HIDDEN,
        perturbed_attn=True,  # as the published checkpoints: diffusers only honours STG blocks with it
    )
    if version == "2.3":
        # The LTX-2.3 additions: gated attention, prompt cross-attention modulation; the caption projection
        # moved into the connectors (per-modality projections), so the transformer has none.
        config.update(
            gated_attn=True,
            cross_attn_mod=True,
            audio_gated_attn=True,
            audio_cross_attn_mod=True,
            use_prompt_embeddings=False,
        )
    return config


def connector_config(version: str, gemma_layers: int = GEMMA_LAYERS) -> dict[str, Any]:
    config = dict(
        caption_channels=GEMMA_HIDDEN,
        text_proj_in_factor=gemma_layers + 1,  # Gemma hidden states of every layer plus the embeddings
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=16,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=8,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=16,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=8,
        connector_rope_base_seq_len=64,
    )
    if version == "2.3":
        # In 2.3 each modality has its own projection and the connector widths equal the cross-attention widths.
        config.update(
            per_modality_projections=True,
            video_hidden_dim=32,
            audio_hidden_dim=16,
            audio_connector_attention_head_dim=8,
            video_gated_attn=True,
            audio_gated_attn=True,
        )
    return config


VIDEO_VAE_CONFIG: dict[str, Any] = dict(
    latent_channels=VIDEO_LATENT_CHANNELS,
    block_out_channels=(8, 16, 32, 64),
    layers_per_block=(1, 1, 1, 1, 1),
    decoder_block_out_channels=(8, 16, 32),
    decoder_layers_per_block=(1, 1, 1, 1),
    decoder_inject_noise=(False, False, False, False),
    # The real VAE's structure: patch 4, then 2x blocks, so 32x spatial and 8x temporal compression.
    spatial_compression_ratio=32,
    temporal_compression_ratio=8,
)

AUDIO_VAE_CONFIG: dict[str, Any] = dict(
    base_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4,
    ch_mult=(1, 2, 4),
    num_res_blocks=1,
    latent_channels=AUDIO_LATENT_CHANNELS,
    mel_bins=MEL_BINS,
    sample_rate=16000,
    mel_hop_length=160,
)

# Real LTX-2 vocoder: 100 mel frames/s upsampled x240 to 24 kHz; the tiny one keeps that arithmetic.
VOCODER_CONFIG: dict[str, Any] = dict(
    in_channels=2 * MEL_BINS,
    hidden_channels=32,
    out_channels=2,
    upsample_kernel_sizes=[12, 11, 16],
    upsample_factors=[6, 5, 8],
    resnet_kernel_sizes=[3],
    resnet_dilations=[[1, 3]],
    output_sampling_rate=24000,
)

# LTX-2.3: a 16 kHz vocoder followed by a bandwidth extender to 48 kHz (mel of hop 80 upsampled x240).
BWE_VOCODER_CONFIG: dict[str, Any] = dict(
    in_channels=2 * MEL_BINS,
    hidden_channels=32,
    upsample_kernel_sizes=[20, 32],
    upsample_factors=[10, 16],
    resnet_kernel_sizes=[3],
    resnet_dilations=[[1, 3]],
    bwe_in_channels=2 * MEL_BINS,
    bwe_hidden_channels=32,
    bwe_upsample_kernel_sizes=[12, 11, 16],
    bwe_upsample_factors=[6, 5, 8],
    bwe_resnet_kernel_sizes=[3],
    bwe_resnet_dilations=[[1, 3]],
    filter_length=128,
    hop_length=80,
    window_length=128,
    num_mel_channels=MEL_BINS,
)

# The scheduler config of the published LTX-2 diffusers checkpoints.
SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "base_image_seq_len": 1024,
    "base_shift": 0.95,
    "invert_sigmas": False,
    "max_image_seq_len": 4096,
    "max_shift": 2.05,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.1,
    "stochastic_sampling": False,
    "time_shift_type": "exponential",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}


# The published x2 spatial upsampler's structure (3D convs, pixel-shuffle x2) at tiny width; GroupNorm(32)
# needs mid_channels to be a multiple of 32.
UPSAMPLER_CONFIG: dict[str, Any] = dict(
    in_channels=VIDEO_LATENT_CHANNELS,
    mid_channels=32,
    num_blocks_per_stage=1,
    dims=3,
    spatial_upsample=True,
    temporal_upsample=False,
    use_rational_resampler=False,
)
DISTILLED_LORA_NAME = "ltx-2-distilled-lora.safetensors"
DISTILLED_LORA_RANK = 4


def gemma_model(vocab_size: int, layers: int = GEMMA_LAYERS):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    text = dict(
        vocab_size=vocab_size,
        hidden_size=GEMMA_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=2048,
        sliding_window=512,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1,
    )
    vision = dict(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=9)
    return Gemma3ForConditionalGeneration(config)


def _save(module: torch.nn.Module, folder: Path, seed: int) -> None:
    fill_random(module, seed)
    module.save_pretrained(str(folder), safe_serialization=True)


def _set_latent_statistics(vae: torch.nn.Module, seed: int) -> None:
    """Non-trivial per-channel mean/std, so that a missing (de)normalisation shows in the parity tests."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        vae.latents_mean.copy_(torch.randn(vae.latents_mean.shape, generator=generator) * 0.1)
        vae.latents_std.copy_(1.0 + torch.rand(vae.latents_std.shape, generator=generator) * 0.5)


def build_tiny(
    folder: Path,
    version: str = "2.0",
    with_upsampler: bool = False,
    with_distilled_lora: bool = False,
    gemma_layers: int = GEMMA_LAYERS,
    transformer_layers: int = 2,
) -> None:
    """Write a tiny LTX-2 (version "2.0") or LTX-2.3 (version "2.3") checkpoint to `folder`; optionally the
    x2 latent upsampler (`latent_upsampler/`) and a distilled LoRA in the official layout (`distilled_lora/`),
    which the two-stage pipeline needs. The default components do not depend on the options. Deeper Gemma /
    transformer stacks (`gemma_layers`, `transformer_layers`) are for tests that need more than two blocks
    (block offload)."""
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
    from transformers import AutoTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        save_gemma_tokenizer(folder / "tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        torch.manual_seed(0)
        _save(gemma_model(len(tokenizer), gemma_layers), folder / "text_encoder", 1)
        torch.manual_seed(1)
        _save(LTX2TextConnectors(**connector_config(version, gemma_layers)), folder / "connectors", 2)
        torch.manual_seed(2)
        config = transformer_config(version, transformer_layers)
        _save(LTX2VideoTransformer3DModel(**config), folder / "transformer", 3)
        torch.manual_seed(3)
        vae = AutoencoderKLLTX2Video(**VIDEO_VAE_CONFIG)
        _set_latent_statistics(vae, 4)
        _save(vae, folder / "vae", 4)
        torch.manual_seed(4)
        audio_vae = AutoencoderKLLTX2Audio(**AUDIO_VAE_CONFIG)
        _set_latent_statistics(audio_vae, 5)
        _save(audio_vae, folder / "audio_vae", 5)
        torch.manual_seed(5)
        vocoder = (
            LTX2VocoderWithBWE(**BWE_VOCODER_CONFIG) if version == "2.3" else LTX2Vocoder(**VOCODER_CONFIG)
        )
        _save(vocoder, folder / "vocoder", 6)
    write_json(folder / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG)
    write_json(folder / "model_index.json", _model_index(version))
    if with_upsampler:
        build_tiny_upsampler(folder / "latent_upsampler")
    if with_distilled_lora:
        build_tiny_distilled_lora(folder / "distilled_lora" / DISTILLED_LORA_NAME, version, config)


def _model_index(version: str) -> dict[str, Any]:
    vocoder_class = "LTX2VocoderWithBWE" if version == "2.3" else "LTX2Vocoder"
    return {
        "_class_name": "LTX2Pipeline",
        "_diffusers_version": "0.42.1",
        "audio_vae": ["diffusers", "AutoencoderKLLTX2Audio"],
        "connectors": ["ltx2", "LTX2TextConnectors"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Gemma3ForConditionalGeneration"],
        "tokenizer": ["transformers", "GemmaTokenizer"],
        "transformer": ["diffusers", "LTX2VideoTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLLTX2Video"],
        "vocoder": ["ltx2", vocoder_class],
    }


def build_tiny_ltx2(folder: Path, **options: bool) -> None:
    build_tiny(folder, "2.0", **options)


def build_tiny_ltx23(folder: Path, **options: bool) -> None:
    build_tiny(folder, "2.3", **options)


def build_tiny_upsampler(folder: Path) -> None:
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(6)
        _save(LTX2LatentUpsamplerModel(**UPSAMPLER_CONFIG), folder, 7)


def build_tiny_distilled_lora(path: Path, version: str = "2.0", config: dict[str, Any] | None = None) -> None:
    """A random rank-4 LoRA on every linear layer of the transformer blocks and on the input projection,
    written in the official layout (`diffusion_model.<official name>.lora_A/B.weight`, no alpha) as
    Lightricks publishes the distilled LoRA; `proj_in` is stored under its official name `patchify_proj`."""
    from diffusers import LTX2VideoTransformer3DModel
    from safetensors.torch import save_file

    with torch.device("meta"):
        transformer = LTX2VideoTransformer3DModel(**(config or transformer_config(version)))
    generator = torch.Generator().manual_seed(8)
    tensors = {}
    for name, module in sorted(transformer.named_modules()):
        if not isinstance(module, torch.nn.Linear) or not (
            name.startswith("transformer_blocks.") or name == "proj_in"
        ):
            continue
        official = "patchify_proj" if name == "proj_in" else name
        rank, (out_features, in_features) = DISTILLED_LORA_RANK, module.weight.shape
        tensors[f"diffusion_model.{official}.lora_A.weight"] = (
            torch.randn(rank, in_features, generator=generator) * 0.2
        )
        tensors[f"diffusion_model.{official}.lora_B.weight"] = (
            torch.randn(out_features, rank, generator=generator) * 0.2
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
