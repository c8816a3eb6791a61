"""A tiny random LTX-2 / LTX-2.3 checkpoint in Lightricks' official single-file layout, plus its Gemma folder.

Built as a diffusers folder whose shapes the official code can express (128 connector registers, 64 mel
bins so the vocoder takes 2 x 64 channels, three dilations per vocoder block, VAE channel multipliers the
official block list can state), then written through ditto's rename table (loading/ltx_official.py).
The tests check that the official loader takes the file with no missing and no unexpected key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ditto.tiny import ltx2 as tiny
from ditto.tiny.common import fill_random
from ditto.tiny.tokenizers import save_gemma_tokenizer

MEL_BINS = 64  # the official vocoder's input is fixed at 2 x 64 mel bins
AUDIO_LATENT_CHANNELS = 4
AUDIO_TOKEN_CHANNELS = AUDIO_LATENT_CHANNELS * MEL_BINS // 4


def diffusers_configs(version: str) -> dict[str, dict[str, Any]]:
    transformer = tiny.transformer_config(version)
    transformer.update(audio_in_channels=AUDIO_TOKEN_CHANNELS, audio_out_channels=AUDIO_TOKEN_CHANNELS)
    transformer.update(cross_attn_timestep_scale_multiplier=1000)
    connectors = tiny.connector_config(version)
    connectors.update(
        video_connector_num_learnable_registers=128, audio_connector_num_learnable_registers=128
    )
    if version == "2.3":
        connectors.update(proj_bias=True)  # the official 2.3 feature extractor's projections have biases
    vae = dict(tiny.VIDEO_VAE_CONFIG)
    # Encoder stages keep the latent width (official multiplier 1); decoder halves it three times.
    vae.update(block_out_channels=(16, 16, 16, 16), decoder_causal=False, timestep_conditioning=False)
    audio_vae = dict(tiny.AUDIO_VAE_CONFIG)
    audio_vae.update(base_channels=AUDIO_TOKEN_CHANNELS, mel_bins=MEL_BINS)
    if version == "2.3":
        vocoder = dict(tiny.BWE_VOCODER_CONFIG)
        vocoder.update(
            bwe_in_channels=2 * MEL_BINS, num_mel_channels=MEL_BINS, bwe_resnet_dilations=[[1, 3, 5]]
        )
    else:
        vocoder = dict(tiny.VOCODER_CONFIG)
    vocoder.update(in_channels=2 * MEL_BINS, resnet_dilations=[[1, 3, 5]])
    return {
        "transformer": transformer,
        "connectors": connectors,
        "vae": vae,
        "audio_vae": audio_vae,
        "vocoder": vocoder,
    }


def _modules(version: str) -> dict[str, torch.nn.Module]:
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    configs = diffusers_configs(version)
    vocoder_class = LTX2VocoderWithBWE if version == "2.3" else LTX2Vocoder
    classes = {
        "connectors": LTX2TextConnectors,
        "transformer": LTX2VideoTransformer3DModel,
        "vae": AutoencoderKLLTX2Video,
        "audio_vae": AutoencoderKLLTX2Audio,
        "vocoder": vocoder_class,
    }
    modules = {}
    for seed, name in enumerate(("connectors", "transformer", "vae", "audio_vae", "vocoder")):
        torch.manual_seed(seed + 1)
        module = classes[name](**configs[name])
        fill_random(module, seed + 2)
        if name in ("vae", "audio_vae"):
            tiny._set_latent_statistics(module, seed + 10)
        modules[name] = module
    return modules


def build_gemma(folder: Path) -> None:
    """Gemma folder as the official code expects it: model*.safetensors and the tokenizer side by side."""
    from transformers import AutoTokenizer

    save_gemma_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    gemma = tiny.gemma_model(len(tokenizer))
    fill_random(gemma, 1)
    gemma.save_pretrained(str(folder), safe_serialization=True)


def build_tiny_official(folder: Path, version: str = "2.0") -> tuple[Path, Path]:
    """Write `folder`/ltx-tiny-{version}.safetensors and `folder`/gemma; return both paths."""
    from ditto.loading.ltx_official import write_official

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        modules = _modules(version)
        gemma = folder / "gemma"
        if not (gemma / "config.json").exists():
            build_gemma(gemma)
    configs = {name: dict(module.config) for name, module in modules.items()}
    parts = {name: module.state_dict() for name, module in modules.items()}
    path = folder / f"ltx-tiny-{version}.safetensors"
    write_official(path, configs, parts, version)
    return path, gemma
