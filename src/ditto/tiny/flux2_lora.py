"""Tiny random FLUX.2 Klein LoRAs, one LoRA written in any of the layouts users have: diffusers/PEFT,
BFL (ai-toolkit, fused qkv) and kohya. The same seed gives the same LoRA in every layout, so tests can
check that the layouts agree and that each one matches diffusers' `load_lora_weights`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ditto.loading.lora import RowBlocks
from ditto.loading.lora_flux2 import flux2_lora_key

LAYOUTS = ("peft", "bfl", "kohya")
# BFL module names per block that every diffusers 0.42.1 converter (BFL and kohya) reads.
DOUBLE = ("img_attn.qkv", "txt_attn.qkv", "img_attn.proj", "txt_attn.proj", "img_mlp.0", "img_mlp.2")
DOUBLE_TXT_MLP = ("txt_mlp.0", "txt_mlp.2")
SINGLE = ("linear1", "linear2")
TOP = ("img_in", "txt_in", "time_in.in_layer", "final_layer.linear")
# The final (shift, scale) modulation: ditto swaps it, diffusers' LoRA converter does not (lora_flux2.py).
MODULATION = ("final_layer.adaLN_modulation.1",)


def bfl_modules(config: dict, modulation: bool = False) -> list[str]:
    """BFL names of the modules the tiny LoRA changes, for a transformer config."""
    names = [f"double_blocks.{i}.{n}" for i in range(config["num_layers"]) for n in DOUBLE + DOUBLE_TXT_MLP]
    names += [f"single_blocks.{i}.{n}" for i in range(config["num_single_layers"]) for n in SINGLE]
    return names + list(TOP) + (list(MODULATION) if modulation else [])


def random_lora(
    config: dict, rank: int = 4, seed: int = 0, modulation: bool = False
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """BFL name -> (down [rank, in], up [out, rank]) with the shapes of the model built from `config`."""
    from ditto.models.flux2 import Flux2Transformer

    with torch.device("meta"):
        model = Flux2Transformer.from_config(config)
    generator = torch.Generator().manual_seed(seed)
    lora = {}
    for name in bfl_modules(config, modulation):
        targets = _targets(name)
        weights = [model.get_submodule(t.removeprefix("transformer.")).weight for t in targets]
        out_features, in_features = sum(w.shape[0] for w in weights), weights[0].shape[1]
        down = torch.randn(rank, in_features, generator=generator) * 0.1
        up = torch.randn(out_features, rank, generator=generator) * 0.1
        lora[name] = (down, up)
    return lora


def write_lora(
    path: Path, lora: dict[str, tuple[torch.Tensor, torch.Tensor]], layout: str, alpha: float | None = None
) -> None:
    """Write `lora` (from random_lora) in `layout`; alpha goes where that layout keeps it (PEFT metadata,
    `.alpha` keys for BFL and kohya), and no alpha means alpha == rank."""
    from safetensors.torch import save_file

    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: one of {LAYOUTS}")
    tensors: dict[str, torch.Tensor] = {}
    metadata: dict[str, str] = {}
    for name, (down, up) in lora.items():
        if layout == "peft":
            tensors.update(_peft_pairs(name, down, up))
            continue
        key, a, b = (
            (f"diffusion_model.{name}", "lora_A", "lora_B")
            if layout == "bfl"
            else ("lora_unet_" + name.replace(".", "_"), "lora_down", "lora_up")
        )
        tensors[f"{key}.{a}.weight"], tensors[f"{key}.{b}.weight"] = down, up
        if alpha is not None or layout == "kohya":
            tensors[f"{key}.alpha"] = torch.tensor(float(alpha if alpha is not None else down.shape[0]))
    if layout == "peft":
        metadata["lora_adapter_metadata"] = json.dumps(_peft_config(tensors, lora, alpha))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)


def build_tiny_flux2_lora(
    path: Path,
    checkpoint: Path,
    layout: str = "peft",
    rank: int = 4,
    alpha: float | None = None,
    seed: int = 0,
    modulation: bool = False,
) -> Path:
    """A random rank-`rank` LoRA for the Klein checkpoint folder `checkpoint`, written to `path`."""
    from ditto.loading.folder import read_config

    config = read_config(Path(checkpoint), "transformer")
    write_lora(Path(path), random_lora(config, rank, seed, modulation), layout, alpha)
    return Path(path)


def _targets(bfl_name: str) -> tuple[str, ...]:
    target = flux2_lora_key(f"diffusion_model.{bfl_name}")
    return target.targets if isinstance(target, RowBlocks) else (target,)


def _peft_pairs(name: str, down: torch.Tensor, up: torch.Tensor) -> dict[str, torch.Tensor]:
    """diffusers names: a fused BFL module becomes its separate modules, each with the same down matrix."""
    target = flux2_lora_key(f"diffusion_model.{name}")
    if isinstance(target, str):
        return {f"{target}.lora_A.weight": down, f"{target}.lora_B.weight": up}
    blocks = up.chunk(len(target.order), dim=0)
    up = torch.cat([blocks[i] for i in target.order], dim=0)
    pairs = {}
    for module, piece in zip(target.targets, up.chunk(len(target.targets), dim=0)):
        pairs[f"{module}.lora_A.weight"], pairs[f"{module}.lora_B.weight"] = down.clone(), piece
    return pairs


def _peft_config(tensors: dict[str, torch.Tensor], lora: dict, alpha: float | None) -> dict:
    """The adapter config diffusers' save_lora_weights writes (keys prefixed by the component)."""
    rank = next(iter(lora.values()))[0].shape[0]
    modules = sorted({k.removeprefix("transformer.").rsplit(".lora_", 1)[0] for k in tensors})
    config = {"r": rank, "lora_alpha": alpha if alpha is not None else rank, "target_modules": modules}
    return {f"transformer.{key}": value for key, value in config.items()}
