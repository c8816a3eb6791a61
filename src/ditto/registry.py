"""Which family a checkpoint belongs to, and where that family's pipeline and tiny builder live.

Entries name modules as strings so that importing the registry imports no model code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ditto.errors import CheckpointError


@dataclass(frozen=True)
class Family:
    name: str
    class_names: tuple[str, ...]  # model_index.json `_class_name` values that mean this family
    pipeline: str  # "module:Class" of ditto's pipeline
    tiny_builder: str  # "module:function(dir) -> None" writing a tiny random checkpoint
    tiny_aliases: tuple[str, ...] = ()

    def pipeline_class(self):
        return _resolve(self.pipeline)

    def build_tiny(self, folder: Path, **options) -> None:
        _resolve(self.tiny_builder)(folder, **options)


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> None:
    FAMILIES[family.name] = family


register(
    Family(
        name="ltx2",
        class_names=("LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline"),
        pipeline="ditto.pipelines.ltx2.pipeline:LTX2Pipeline",
        tiny_builder="ditto.tiny.ltx2:build_tiny_ltx2",
        tiny_aliases=("tiny-ltx2",),
    )
)
register(
    Family(
        name="ltx2.3",
        class_names=(),
        pipeline="ditto.pipelines.ltx2.pipeline:LTX2Pipeline",
        tiny_builder="ditto.tiny.ltx2:build_tiny_ltx23",
        tiny_aliases=("tiny-ltx2.3",),
    )
)


register(
    Family(
        name="ltx2-official",
        class_names=(),  # a single .safetensors file with the official "config" metadata, not a folder
        pipeline="ditto.pipelines.ltx2.official:LTX2OfficialPipeline",
        tiny_builder="ditto.tiny.ltx_official:build_tiny_official",
    )
)


def _official_file_family(path: Path) -> Family:
    from ditto.loading.ltx_official import is_official_file

    if not is_official_file(path):
        raise CheckpointError(
            f"model={str(path)!r} is a .safetensors file without the official LTX-2 'config' metadata; "
            "ditto runs official LTX-2 single files and diffusers-format folders"
        )
    return FAMILIES["ltx2-official"]


def family_by_tiny_name(name: str) -> Family | None:
    for family in FAMILIES.values():
        if name in family.tiny_aliases:
            return family
    return None


def tiny_names() -> list[str]:
    return [alias for family in FAMILIES.values() for alias in family.tiny_aliases]


def detect_family(folder: Path) -> Family:
    """Read model_index.json's `_class_name` and map it to a family; anything else is a clear error."""
    from ditto.loading.folder import read_model_index

    if folder.is_file() and folder.suffix == ".safetensors":
        return _official_file_family(folder)
    if not folder.exists():
        raise CheckpointError(
            f"model={str(folder)!r} does not exist; give a checkpoint folder or one of {tiny_names()}"
        )
    if not (folder / "model_index.json").exists():
        raise CheckpointError(
            f"model={str(folder)!r} is no known checkpoint: it has no model_index.json "
            f"(expected a diffusers-format folder, or one of {tiny_names()})"
        )
    class_name = read_model_index(folder).get("_class_name", "")
    for family in FAMILIES.values():
        if class_name in family.class_names:
            return family
    known = sorted(name for family in FAMILIES.values() for name in family.class_names)
    raise CheckpointError(
        f"model={str(folder)!r} is a {class_name or 'unnamed'} checkpoint, which ditto does not run; known: {known}"
    )


register(
    Family(
        name="flux2-klein",
        class_names=("Flux2KleinPipeline",),
        pipeline="ditto.pipelines.flux2.pipeline:Flux2KleinPipeline",
        tiny_builder="ditto.tiny.flux2:build_tiny_flux2_klein",
        tiny_aliases=("tiny-flux2-klein",),
    )
)
register(
    Family(
        name="qwen-image",
        class_names=("QwenImagePipeline",),
        pipeline="ditto.pipelines.qwen_image.pipeline:QwenImagePipeline",
        tiny_builder="ditto.tiny.qwen_image:build_tiny_qwen_image",
        tiny_aliases=("tiny-qwen-image",),
    )
)
register(
    Family(
        name="qwen-image-edit",
        # Not QwenImageEditPipeline (the first Edit release): it templates and sizes the image differently,
        # so running it through Edit-Plus would silently differ from the reference.
        class_names=("QwenImageEditPlusPipeline",),
        pipeline="ditto.pipelines.qwen_image.pipeline:QwenImageEditPlusPipeline",
        tiny_builder="ditto.tiny.qwen_image:build_tiny_qwen_image_edit",
        tiny_aliases=("tiny-qwen-image-edit",),
    )
)
