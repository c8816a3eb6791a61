"""Qwen-Image 20B text-to-image, whole pipeline, random weights, built in memory (as full_size_ltx2.py).

The native transformer (diffusers' defaults are the published 20B layout), the Qwen2.5-VL-7B text encoder
(its published config, vision tower included: resident though unused for text), the Qwen-Image VAE
(diffusers' defaults) and the published scheduler config; the tokenizer is ditto's offline tiny one (ids
are random anyway, only the sequence length matters for timing).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmarks.harness.full_size import build, fill_normal, offline_tokenizer

# Qwen/Qwen2.5-VL-7B-Instruct config.json (what Qwen-Image's text_encoder/ holds).
QWEN25_VL_7B: dict[str, Any] = dict(
    text_config=dict(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    ),
    vision_config=dict(
        depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
)  # fmt: skip


def _text_encoder(tiny: bool, tokenizer: Any, device: torch.device, dtype: torch.dtype) -> nn.Module:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from ditto.tiny import qwen_image as t

    if tiny:
        return t._text_encoder(tokenizer).to(device, dtype).requires_grad_(False)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in t._VISION_TOKENS.items()}
    config = Qwen2_5_VLConfig(**QWEN25_VL_7B, **ids)
    return build(lambda: Qwen2_5_VLForConditionalGeneration(config), device, dtype)


def build_qwen_image(device: torch.device, dtype: torch.dtype, tiny: bool = False):
    """ditto's QwenImagePipeline on in-memory components (tiny widths with tiny=True)."""
    from diffusers import AutoencoderKLQwenImage

    from ditto.models.qwen_image.transformer import QwenImageTransformer
    from ditto.pipelines.qwen_image.components import QwenImageComponents
    from ditto.pipelines.qwen_image.pipeline import QwenImagePipeline
    from ditto.tiny import qwen_image as t

    tokenizer = offline_tokenizer(t._save_tokenizer)
    if tiny:
        transformer_config = dict(
            in_channels=t.LATENT_CHANNELS * 4, out_channels=t.LATENT_CHANNELS, num_layers=2,
            attention_head_dim=16, num_attention_heads=2, joint_attention_dim=t.TEXT_WIDTH, axes_dims_rope=(4, 6, 6),
        )  # fmt: skip
        vae = t._vae().to(device, dtype).eval().requires_grad_(False)
    else:
        transformer_config = {}
        vae = build(lambda: AutoencoderKLQwenImage(), device, dtype)
    transformer = fill_normal(build(lambda: QwenImageTransformer(**transformer_config), device, dtype))
    components = QwenImageComponents(
        transformer=transformer, vae=vae, text_encoder=_text_encoder(tiny, tokenizer, device, dtype),
        tokenizer=tokenizer, image_processor=None, scheduler_config=dict(t.SCHEDULER_CONFIG), device=device,
        dtype=dtype,
    )  # fmt: skip
    return QwenImagePipeline(components)
