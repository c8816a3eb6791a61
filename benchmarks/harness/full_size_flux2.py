"""FLUX.2 Klein 4B text-to-image, whole pipeline, random weights: ditto's pipeline and diffusers'
Flux2KleinPipeline built on the same in-memory modules.

Shared: the transformer weights (ditto's native model takes diffusers' parameter tensors), the VAE, the
tokenizer and the Qwen3 text encoder (ditto runs the first 27 layers of the same tensors: Klein reads
hidden states 9, 18 and 27, so ditto never loads the upper layers; diffusers runs all 36 and the LM head).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from benchmarks.harness.full_size import build, offline_tokenizer, share_into
from benchmarks.harness.measure import build_reference, native_sharing_weights
from benchmarks.harness.specs import SPECS

# Qwen3-4B (huggingface.co/Qwen/Qwen3-4B config.json), Klein 4B's text encoder.
QWEN3_4B: dict[str, Any] = dict(
    vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
    num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)  # fmt: skip
KLEIN_DEEPEST_LAYER = 27  # Flux2KleinPipeline's text_encoder_out_layers = (9, 18, 27)
VAE_CONFIG: dict[str, Any] = {}  # AutoencoderKLFlux2's defaults are FLUX.2's VAE (32 latent channels)


@dataclass
class KleinPipelines:
    ditto: Any  # ditto.pipelines.flux2.Flux2KleinPipeline
    diffusers: Any  # diffusers.Flux2KleinPipeline
    native: nn.Module  # ditto's transformer (shares weights with diffusers')
    reference: nn.Module  # diffusers' transformer
    parameters: dict[str, int]


def _qwen3(tiny: bool, tokenizer: Any, device: torch.device, dtype: torch.dtype) -> nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if tiny:
        from ditto.tiny.flux2 import tiny_text_encoder

        return tiny_text_encoder(len(tokenizer), tokenizer.pad_token_id).to(device, dtype).eval()
    config = Qwen3Config(**QWEN3_4B, pad_token_id=tokenizer.pad_token_id)
    return build(lambda: Qwen3ForCausalLM(config), device, dtype)


def _ditto_text_model(full: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """A Qwen3Model of the first 27 layers on `full`'s own tensors (as KleinTextEncoder.from_pretrained
    configures it: hidden_states[-1] is the raw last layer, not the final-normed one)."""
    from transformers import Qwen3Model

    config = copy.deepcopy(full.config)
    config.num_hidden_layers = min(config.num_hidden_layers, KLEIN_DEEPEST_LAYER)
    config.tie_last_hidden_states = False
    kept = {
        key: tensor
        for key, tensor in full.model.state_dict().items()
        if not key.startswith("layers.") or int(key.split(".")[1]) < config.num_hidden_layers
    }
    return share_into(build(lambda: Qwen3Model(config), device, dtype), kept)


def _transformers(tiny: bool, device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, nn.Module]:
    """(diffusers' transformer, ditto's on the same tensors), N(0, 0.02) weights."""
    spec = SPECS["flux2-klein-4b"]
    if tiny:
        from ditto.tiny.flux2 import tiny_transformer

        config = {k: v for k, v in tiny_transformer(False).config.items() if not k.startswith("_")}
        spec = dataclasses.replace(spec, name="tiny-flux2-klein", config=config)
    reference = build_reference(spec, device, dtype)
    return reference, native_sharing_weights(spec, reference)


def _vae(tiny: bool, device: torch.device, dtype: torch.dtype) -> nn.Module:
    from diffusers import AutoencoderKLFlux2

    if tiny:
        from ditto.tiny.flux2 import tiny_vae

        return tiny_vae().to(device, dtype).eval().requires_grad_(False)
    return build(lambda: AutoencoderKLFlux2(**VAE_CONFIG), device, dtype)


def build_klein(device: torch.device, dtype: torch.dtype, tiny: bool = False) -> KleinPipelines:
    import diffusers
    from diffusers import FlowMatchEulerDiscreteScheduler

    from ditto.pipelines.flux2 import Flux2KleinPipeline
    from ditto.pipelines.flux2_text import KleinTextEncoder
    from ditto.tiny.flux2 import KLEIN_SCHEDULER
    from ditto.tiny.tokenizers import save_qwen2_tokenizer

    tokenizer = offline_tokenizer(save_qwen2_tokenizer)
    text_model = _qwen3(tiny, tokenizer, device, dtype)
    reference, native = _transformers(tiny, device, dtype)
    vae = _vae(tiny, device, dtype)
    theirs = diffusers.Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**KLEIN_SCHEDULER),
        vae=vae,
        text_encoder=text_model,
        tokenizer=tokenizer,
        transformer=reference,
        is_distilled=True,  # Klein 4B is step-distilled: 4 steps, no CFG
    )
    theirs.set_progress_bar_config(disable=True)
    encoder = KleinTextEncoder(tokenizer, _ditto_text_model(text_model, device, dtype), device)
    ours = Flux2KleinPipeline(native, vae, encoder, dict(KLEIN_SCHEDULER), True, device)
    parameters = {
        "transformer": sum(p.numel() for p in reference.parameters()),
        "text_encoder": sum(p.numel() for p in text_model.parameters()),
        "vae": sum(p.numel() for p in vae.parameters()),
    }
    return KleinPipelines(ours, theirs, native, reference, parameters)


def stage_targets(pipes: KleinPipelines, library: str) -> list[tuple[object, str, str]]:
    """What the split run times: text model, transformer forwards, VAE decode (same labels for both).

    ditto's text encoder is timed around `encode_unique` (tokenizing included), not its model's forward: a
    recorded encoder (cuda_graphs) replays without calling the forward, and a sync inside would break the
    recording."""
    if library == "ditto":
        text, transformer = (pipes.ditto.text_encoder, "encode_unique"), pipes.native
    else:
        text, transformer = (pipes.diffusers.text_encoder, "forward"), pipes.reference
    return [
        (*text, "text_encoder"),
        (transformer, "forward", "denoise"),
        (pipes.ditto.vae, "decode", "vae_decode"),
    ]
