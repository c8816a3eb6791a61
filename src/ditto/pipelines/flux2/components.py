"""A FLUX.2 Klein diffusers folder, loaded: the native transformer, the reference VAE and Qwen3 text encoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ditto.errors import CheckpointError
from ditto.loading.folder import config_value, read_json, read_model_index
from ditto.loading.modules import build_from_config
from ditto.models.flux2 import Flux2Transformer
from ditto.pipelines.flux2.params import KleinDefaults
from ditto.pipelines.flux2.schedule import check_scheduler_config
from ditto.pipelines.flux2.text import DEEPEST_LAYER, KleinTextEncoder


@dataclass(frozen=True)
class KleinCheckpoint:
    """What validating a request needs to know of a checkpoint (no weights)."""

    is_distilled: bool  # step-distilled: 4 steps without CFG by default
    multiple: int  # image sides must be multiples of this
    text_layers: int  # the deepest text-encoder hidden state kept (0 = embeddings)

    @property
    def defaults(self) -> KleinDefaults:
        return KleinDefaults.for_checkpoint(self.is_distilled)


def read_checkpoint(path: Path) -> KleinCheckpoint:
    """The facts request validation needs, from model_index.json and the configs: no weight is read."""
    vae = read_json(path / "vae" / "config.json")
    blocks = config_value(vae, "block_out_channels", "diffusers:AutoencoderKLFlux2")
    text = read_json(path / "text_encoder" / "config.json")
    return KleinCheckpoint(
        is_distilled=_is_distilled(path),
        multiple=vae_multiple(len(blocks)),
        text_layers=min(int(text["num_hidden_layers"]), DEEPEST_LAYER),
    )


def vae_multiple(vae_blocks: int) -> int:
    """Image sides must be multiples of this: the VAE's downsampling, then 2x2 patches."""
    return 2 ** (vae_blocks - 1) * 2


def _is_distilled(path: Path) -> bool:
    # diffusers' Flux2KleinPipeline.__init__: is_distilled defaults to False when model_index lacks it.
    return bool(read_model_index(path).get("is_distilled", False))


@dataclass
class KleinComponents:
    transformer: Flux2Transformer
    vae: Any  # diffusers AutoencoderKLFlux2
    text_encoder: KleinTextEncoder
    scheduler_config: dict[str, Any]
    is_distilled: bool  # step-distilled: 4 steps without CFG by default
    device: torch.device
    # Where the weights go stage by stage when the engine has a memory budget (acceleration/offload).
    residency: Any = None

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.x_embedder.weight.dtype

    @property
    def defaults(self) -> KleinDefaults:
        return KleinDefaults.for_checkpoint(self.is_distilled)

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this: the VAE's downsampling, then 2x2 patches."""
        return vae_multiple(len(self.vae.config.block_out_channels))

    @property
    def checkpoint(self) -> KleinCheckpoint:
        return KleinCheckpoint(self.is_distilled, self.multiple, self.text_encoder.num_hidden_states)

    @property
    def latent_channels(self) -> int:
        """Channels of the patchified latents (the transformer's input width)."""
        return self.transformer.x_embedder.in_features


def load_components(path: Path, device: torch.device, dtype: torch.dtype) -> KleinComponents:
    from diffusers import AutoencoderKLFlux2

    is_distilled = _is_distilled(path)
    scheduler_config = read_json(path / "scheduler" / "scheduler_config.json")
    check_scheduler_config(scheduler_config)
    transformer = build_from_config(Flux2Transformer, path, "transformer", dtype, device)
    try:
        vae = AutoencoderKLFlux2.from_pretrained(str(path / "vae"), dtype=dtype).to(device).eval()
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path / 'vae'}: cannot load the FLUX.2 VAE: {exc}") from None
    text_encoder = KleinTextEncoder.from_pretrained(path, device, dtype)
    return KleinComponents(transformer, vae, text_encoder, scheduler_config, is_distilled, device)
