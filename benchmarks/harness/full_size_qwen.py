"""Qwen-Image 20B text-to-image, whole pipeline (ditto's), random weights, built in memory on the device.

The native transformer at diffusers' default config (the published 20B), Qwen2.5-VL-7B as the text encoder
(its published config, vision tower included: Qwen-Image's checkpoint carries it), the default Qwen-Image
VAE, the real scheduler config, and ditto's offline tiny Qwen2 tokenizer (token ids are random weights'
inputs anyway; only the sequence length matters). With tiny=True: ditto's tiny checkpoint, written to a
temporary folder and loaded as a user would (deeper than the embedded one, so its blocks can stream).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.full_size import build, fill_normal, offline_tokenizer

# huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct config.json (Qwen-Image's text_encoder/config.json).
QWEN25_VL_7B: dict[str, Any] = dict(
    text_config=dict(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    ),
    vision_config=dict(
        depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
)  # fmt: skip
TINY_LAYERS = 6


def build_qwen_image(device: torch.device, dtype: torch.dtype, tiny: bool = False) -> Any:
    """ditto's QwenImagePipeline on random weights (the published layout, or tiny)."""
    from ditto.pipelines.qwen_image.pipeline import QwenImagePipeline

    if tiny:
        from ditto.tiny.qwen_image import build_tiny_qwen_image

        folder = Path(tempfile.mkdtemp(prefix="ditto-bench-qwen-"))
        build_tiny_qwen_image(folder, layers=TINY_LAYERS)
        return QwenImagePipeline.from_pretrained(folder, device, dtype)
    return QwenImagePipeline(_components(device, dtype))


def _components(device: torch.device, dtype: torch.dtype) -> Any:
    from diffusers import AutoencoderKLQwenImage
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from benchmarks.harness.specs import QWEN_IMAGE_CONFIG
    from ditto.models.qwen_image.transformer import QwenImageTransformer
    from ditto.pipelines.qwen_image.components import QwenImageComponents
    from ditto.tiny.qwen_image import _VISION_TOKENS, SCHEDULER_CONFIG, _save_tokenizer

    tokenizer = offline_tokenizer(_save_tokenizer)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in _VISION_TOKENS.items()}
    config = Qwen2_5_VLConfig(**QWEN25_VL_7B, **ids)
    return QwenImageComponents(
        transformer=fill_normal(build(lambda: QwenImageTransformer(**QWEN_IMAGE_CONFIG), device, dtype)),
        vae=build(AutoencoderKLQwenImage, device, dtype),
        text_encoder=build(lambda: Qwen2_5_VLForConditionalGeneration(config), device, dtype),
        tokenizer=tokenizer,
        image_processor=None,
        scheduler_config=dict(SCHEDULER_CONFIG),
        device=device,
        dtype=dtype,
    )
