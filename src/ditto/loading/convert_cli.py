"""`ditto convert SRC DST`: official LTX-2 single file -> diffusers folder, or diffusers folder -> official file.

The Gemma text encoder and tokenizer are not part of an official file: converting to a folder copies them
from `--text-encoder` when given (else the folder lacks them); converting to a file ignores them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from ditto.errors import CheckpointError
from ditto.loading.folder import load_state_dict, read_config, read_model_index
from ditto.loading.ltx_official import read_official, write_official

COMPONENT_CLASSES = {
    "transformer": ("diffusers", "LTX2VideoTransformer3DModel"),
    "connectors": ("ltx2", "LTX2TextConnectors"),
    "vae": ("diffusers", "AutoencoderKLLTX2Video"),
    "audio_vae": ("diffusers", "AutoencoderKLLTX2Audio"),
}
# The scheduler config of the published LTX-2 diffusers checkpoints (its sigma rule is the official one).
SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "base_image_seq_len": 1024,
    "base_shift": 0.95,
    "max_image_seq_len": 4096,
    "max_shift": 2.05,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.1,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}


def official_to_folder(src: Path, dst: Path, text_encoder: Path | None = None) -> None:
    from safetensors.torch import save_file

    configs, parts, version = read_official(src)
    vocoder_class = "LTX2VocoderWithBWE" if "bwe_hidden_channels" in configs["vocoder"] else "LTX2Vocoder"
    classes = dict(COMPONENT_CLASSES, vocoder=("ltx2", vocoder_class))
    for name, (_, class_name) in classes.items():
        folder = dst / name
        folder.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": class_name, **configs[name]}
        (folder / "config.json").write_text(json.dumps(config, indent=2, default=list))
        tensors = {k: v.contiguous() for k, v in parts[name].items()}
        save_file(tensors, str(folder / "diffusion_pytorch_model.safetensors"))
    (dst / "scheduler").mkdir(parents=True, exist_ok=True)
    (dst / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER_CONFIG, indent=2))
    index = {"_class_name": "LTX2Pipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]}
    index.update({name: list(value) for name, value in classes.items()})
    if text_encoder is not None:
        _copy_gemma(Path(text_encoder), dst)
        index.update(
            text_encoder=["transformers", "Gemma3ForConditionalGeneration"],
            tokenizer=["transformers", "GemmaTokenizer"],
        )
    (dst / "model_index.json").write_text(json.dumps(index, indent=2))


def _copy_gemma(src: Path, dst: Path) -> None:
    from transformers import AutoTokenizer

    shutil.copytree(src, dst / "text_encoder", dirs_exist_ok=True)
    AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(dst / "tokenizer"))


def folder_to_official(src: Path, dst: Path) -> None:
    from ditto.pipelines.ltx2.components import detect_version

    index = read_model_index(src)
    names = ("transformer", "connectors", "vae", "audio_vae", "vocoder")
    missing = [name for name in names if name not in index]
    if missing:
        raise CheckpointError(f"{src} is not an LTX-2 diffusers folder: missing {missing}")
    configs = {name: read_config(src, name) for name in names}
    parts = {name: load_state_dict(src / name) for name in names}
    write_official(dst, configs, parts, detect_version(configs["transformer"]))


def run(args: argparse.Namespace) -> int:
    src, dst = Path(args.src), Path(args.dst)
    if src.is_file():
        official_to_folder(src, dst, args.text_encoder)
    elif src.is_dir():
        folder_to_official(src, dst)
    else:
        raise CheckpointError(f"{src} does not exist")
    print(f"wrote {dst}")
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert", help="official LTX-2 single file <-> diffusers folder (direction from SRC)"
    )
    parser.add_argument("src", help="official .safetensors file, or diffusers-format folder")
    parser.add_argument("dst", help="diffusers folder to write, or .safetensors file to write")
    parser.add_argument("--text-encoder", help="Gemma-3 folder to copy into the diffusers folder")
    parser.set_defaults(handler=run)
