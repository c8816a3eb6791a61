"""FLUX.2 (Klein) LoRA key names -> ditto's transformer modules (diffusers names).

Three layouts are read, the ones diffusers 0.42.1's `Flux2LoraLoaderMixin` accepts:

* diffusers/PEFT: `transformer.<diffusers name>` (or a bare PEFT save, `base_model.model.<name>`, or no
  prefix at all), lora_A/lora_B, alpha in the adapter metadata.
* BFL/original (ai-toolkit and most trainers): `diffusion_model.<BFL name>`, where a double block's image
  and text attention keep one fused `qkv` projection; its up matrix is cut into ditto's to_q/to_k/to_v
  (add_*_proj for text) rows, the down matrix shared. Expanded diffusers block names under
  `diffusion_model.` are accepted too, as diffusers does.
* kohya: `lora_unet_<BFL name with dots as underscores>`, lora_down/lora_up and a per-module `.alpha`.

One deliberate difference from diffusers: BFL's final `adaLN_modulation` emits (shift, scale) while the
diffusers/ditto `norm_out.linear` emits (scale, shift) (diffusers' own checkpoint converter swaps them);
diffusers' LoRA converter forgets the swap, ditto swaps the LoRA's up rows as well, so such a LoRA acts
as it did on the model it was trained on.
"""

from __future__ import annotations

import re

from ditto.loading.lora import RowBlocks

QKV = (0, 1, 2)
# BFL name inside double block N -> ditto name(s) inside transformer_blocks.N.
DOUBLE_BLOCK = {
    "img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.linear_in",
    "img_mlp.2": "ff.linear_out",
    "txt_mlp.0": "ff_context.linear_in",
    "txt_mlp.2": "ff_context.linear_out",
}
# BFL name inside single block N -> ditto name inside single_transformer_blocks.N (both fused the same way).
SINGLE_BLOCK = {"linear1": "attn.to_qkv_mlp_proj", "linear2": "attn.to_out"}
TOP_LEVEL = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_guidance_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_guidance_embed.timestep_embedder.linear_2",
    "guidance_in.in_layer": "time_guidance_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_guidance_embed.guidance_embedder.linear_2",
    "final_layer.linear": "proj_out",
    "double_stream_modulation_img.lin": "double_stream_modulation_img.linear",
    "double_stream_modulation_txt.lin": "double_stream_modulation_txt.linear",
    "single_stream_modulation.lin": "single_stream_modulation.linear",
}
SHIFT_SCALE_SWAPPED = {"final_layer.adaLN_modulation.1": "norm_out.linear"}
BLOCK = re.compile(r"(double|single)_blocks\.(\d+)\.(.+)")
# kohya spells every BFL name with underscores; these are the names it can have, in that spelling.
KOHYA_BLOCK = re.compile(r"(double|single)_blocks_(\d+)_(.+)")
KOHYA_NAMES = {
    name.replace(".", "_"): name for name in (*DOUBLE_BLOCK, *SINGLE_BLOCK, *TOP_LEVEL, *SHIFT_SCALE_SWAPPED)
}


def flux2_lora_key(module: str) -> str | RowBlocks | None:
    """A LoRA file's module path -> ditto's transformer module ("transformer.<name>"), the row blocks of
    several modules for a fused BFL projection, or None when the name is not a FLUX.2 one."""
    if module.startswith("lora_unet_"):
        return _kohya(module.removeprefix("lora_unet_"))
    for prefix in ("diffusion_model.", "base_model.model."):
        if module.startswith(prefix):
            rest = module.removeprefix(prefix)
            # Not a BFL name: a diffusers one, as diffusers accepts there (checked against the model later).
            return _bfl(rest) or f"transformer.{rest}"
    return f"transformer.{module.removeprefix('transformer.')}"


def _bfl(name: str) -> str | RowBlocks | None:
    match = BLOCK.fullmatch(name)
    if match:
        kind, index, inner = match.groups()
        if kind == "double":
            return _within(f"transformer.transformer_blocks.{index}", DOUBLE_BLOCK.get(inner))
        return _within(f"transformer.single_transformer_blocks.{index}", SINGLE_BLOCK.get(inner))
    if name in SHIFT_SCALE_SWAPPED:
        return RowBlocks((f"transformer.{SHIFT_SCALE_SWAPPED[name]}",), (1, 0))
    return _within("transformer", TOP_LEVEL.get(name))


def _within(parent: str, names: str | tuple[str, ...] | None) -> str | RowBlocks | None:
    if names is None:
        return None
    if isinstance(names, str):
        return f"{parent}.{names}"
    return RowBlocks(tuple(f"{parent}.{name}" for name in names), QKV)


def _kohya(name: str) -> str | RowBlocks | None:
    match = KOHYA_BLOCK.fullmatch(name)
    if match:
        kind, index, inner = match.groups()
        inner = KOHYA_NAMES.get(inner)
        return None if inner is None else _bfl(f"{kind}_blocks.{index}.{inner}")
    bfl = KOHYA_NAMES.get(name)
    return None if bfl is None else _bfl(bfl)
