"""Tiny random-weight Qwen-Image and Qwen-Image-Edit(-Plus) checkpoints in the diffusers folder layout.

Deterministic: the same call writes the same weights. The shapes keep every reference constraint valid:
Qwen2.5-VL's `mrope_section` sums to half its head dimension, the RoPE axes sum to the DiT head dimension,
the VAE keeps four levels (8x spatial compression) as the real one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ditto.tiny.tokenizers import QWEN_SPECIALS, save_qwen2_tokenizer

TEXT_WIDTH = 32
LATENT_CHANNELS = 4

# The real scheduler_config.json of Qwen/Qwen-Image (dynamic exponential shift, terminal 0.02).
SCHEDULER_CONFIG = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}


def _transformer(layers: int) -> Any:
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    return QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=LATENT_CHANNELS * 4,
        out_channels=LATENT_CHANNELS,
        num_layers=layers,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_WIDTH,
        axes_dims_rope=(4, 6, 6),
    )


def _vae() -> Any:
    from diffusers import AutoencoderKLQwenImage

    torch.manual_seed(1)
    return AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.1, -0.2, 0.3, -0.1],
        latents_std=[1.5, 2.0, 1.2, 2.5],
    )


def _text_encoder(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in _VISION_TOKENS.items()}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": TEXT_WIDTH,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 2048,
            "bos_token_id": 0,
            "eos_token_id": 2,
            # head dim 16: the three M-RoPE sections must sum to 8.
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": TEXT_WIDTH,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        **ids,
    )
    torch.manual_seed(2)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


_VISION_TOKENS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
}


def _image_processor() -> Any:
    from transformers import Qwen2VLImageProcessor

    # At most 8x8 patches of 14 pixels: a condition image costs the tiny vision tower 16 merged tokens.
    return Qwen2VLImageProcessor(
        min_pixels=28 * 28, max_pixels=112 * 112, patch_size=14, merge_size=2, temporal_patch_size=2
    )


def reference_vl_processor(processor_dir: Path) -> Any:
    """transformers' own Qwen2VLProcessor for a processor folder, for the diffusers reference in tests.

    ProcessorMixin type-checks its `video_processor` slot against a class transformers only exports with
    torchvision installed, so on a machine without torchvision (this CPU box) it cannot be built even with
    no video processor. This subclass skips only that one check; every processing step stays transformers'.
    """
    from transformers import Qwen2Tokenizer, Qwen2VLImageProcessor, Qwen2VLProcessor

    class Qwen2VLProcessorWithoutVideo(Qwen2VLProcessor):
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    return Qwen2VLProcessorWithoutVideo(
        image_processor=Qwen2VLImageProcessor.from_pretrained(str(processor_dir)),
        tokenizer=Qwen2Tokenizer.from_pretrained(str(processor_dir)),
    )


def _save_tokenizer(folder: Path) -> Any:
    """The shared tiny Qwen2 tokenizer, with its control tokens registered as special (unsplittable) tokens.

    Qwen's template and the VL processor rely on `<|im_start|>`, `<|image_pad|>`, ... being single tokens;
    without this the processor finds no image placeholder ids and refuses the input.
    """
    from transformers import Qwen2Tokenizer

    save_qwen2_tokenizer(folder)
    tokenizer = Qwen2Tokenizer.from_pretrained(str(folder))
    tokenizer.add_tokens(QWEN_SPECIALS, special_tokens=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def _components(folder: Path, layers: int) -> dict[str, Any]:
    from diffusers import FlowMatchEulerDiscreteScheduler

    tokenizer = _save_tokenizer(folder / "tokenizer")
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        "vae": _vae(),
        "text_encoder": _text_encoder(tokenizer),
        "tokenizer": tokenizer,
        "transformer": _transformer(layers),
    }


def build_tiny_qwen_image(folder: Path, layers: int = 2, **options: Any) -> None:
    """Write a tiny QwenImagePipeline folder (about 3 MB) with random weights."""
    from diffusers import QwenImagePipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe = QwenImagePipeline(**_components(folder, layers))
    pipe.save_pretrained(str(folder))


def build_tiny_qwen_image_edit(folder: Path, layers: int = 2, **options: Any) -> None:
    """Write a tiny QwenImageEditPlusPipeline folder (text encoder with a vision tower, VL processor).

    The processor folder holds what Qwen2VLProcessor.save_pretrained writes for an image-only processor
    (image processor config and tokenizer), written part by part since the processor class itself cannot be
    built without torchvision here (see `reference_vl_processor`).
    """
    folder = Path(folder)
    build_tiny_qwen_image(folder, layers)
    _image_processor().save_pretrained(str(folder / "processor"))
    _save_tokenizer(folder / "processor")
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = "QwenImageEditPlusPipeline"
    index["processor"] = ["transformers", "Qwen2VLProcessor"]
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
