"""A tiny random-weight FLUX.2 Klein checkpoint in diffusers format, built offline and deterministically.

Shapes keep every code path of the real model alive: a 28-layer Qwen3 of width 32 (Klein reads hidden
states 9, 18 and 27), a 4-level VAE (scale factor 8, so sizes are multiples of 16 as at full size), and a
transformer with double- and single-stream blocks and 4-axis RoPE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

QWEN3_WIDTH = 32
QWEN3_LAYERS = 28
TEXT_LAYERS_READ = 3  # Klein stacks 3 hidden states: joint_attention_dim = 3 * width
LATENT_CHANNELS = 8

# FLUX.2-klein-4B scheduler/scheduler_config.json (huggingface.co/black-forest-labs/FLUX.2-klein-4B).
KLEIN_SCHEDULER = dict(
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
    time_shift_type="exponential",
)


def tiny_transformer(guidance_embeds: bool):
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(1)
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=LATENT_CHANNELS * 4,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_LAYERS_READ * QWEN3_WIDTH,
        timestep_guidance_channels=32,
        mlp_ratio=3.0,
        axes_dims_rope=(4, 4, 4, 4),
        rope_theta=2000,
        eps=1e-6,
        guidance_embeds=guidance_embeds,
    )


def tiny_vae():
    from diffusers import AutoencoderKLFlux2

    torch.manual_seed(2)
    vae = AutoencoderKLFlux2(
        block_out_channels=(16, 16, 16, 16),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=64,
    )
    with torch.no_grad():  # non-trivial latent statistics so the (de)normalisation is exercised
        vae.bn.running_mean.normal_(0, 0.2)
        vae.bn.running_var.uniform_(0.5, 2.0)
    return vae


def tiny_text_encoder(vocab_size: int, pad_token_id: int):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(3)
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=QWEN3_WIDTH,
        intermediate_size=64,
        num_hidden_layers=QWEN3_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        initializer_range=0.2,  # larger than the default so hidden states differ visibly between prompts
    )
    return Qwen3ForCausalLM(config).eval()


def build_tiny_flux2_klein(
    folder: Path, distilled: bool = True, guidance_embeds: bool = False, **_: Any
) -> None:
    """Write the checkpoint to `folder` (model_index.json `_class_name: Flux2KleinPipeline`).

    `distilled=False` writes the base (CFG) variant: `is_distilled: false` in model_index.json.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline
    from transformers import AutoTokenizer

    from ditto.tiny.tokenizers import save_qwen2_tokenizer

    folder = Path(folder)
    save_qwen2_tokenizer(folder / "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**KLEIN_SCHEDULER),
        vae=tiny_vae(),
        text_encoder=tiny_text_encoder(len(tokenizer), tokenizer.pad_token_id),
        tokenizer=tokenizer,
        transformer=tiny_transformer(guidance_embeds),
        is_distilled=distilled,
    )
    pipe.save_pretrained(str(folder))


def build_tiny_flux2_klein_base(folder: Path, **options: Any) -> None:
    """The base (undistilled, classifier-free guidance) variant."""
    build_tiny_flux2_klein(folder, distilled=False, **options)
