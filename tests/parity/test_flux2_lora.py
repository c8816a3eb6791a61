"""LoRA on FLUX.2 Klein: ditto's fused LoRA against diffusers' load_lora_weights (PEFT adapters applied at
run time) in the PEFT, BFL and kohya layouts; the layouts agree; scale 0, exact unfusing, clear errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from ditto.errors import InvalidParameter
from ditto.loading.folder import read_config
from ditto.tiny.flux2_lora import build_tiny_flux2_lora, random_lora, write_lora

from helpers.flux2 import tiny_klein
from helpers.thresholds import check_at_most

REQUEST = dict(prompt="a red fox in the snow", height=64, width=48, num_inference_steps=3)
REQUEST.update(max_sequence_length=64, seed=21, output_type="latent")
# (layout, alpha, seed, scale) per LoRA; several entries are loaded together.
CASES = {
    "peft_alpha8": [("peft", 8.0, 1, 0.5)],
    "bfl": [("bfl", None, 2, 0.7)],
    "kohya_alpha2": [("kohya", 2.0, 3, 1.0)],
    "peft_and_bfl_stacked": [("peft", 8.0, 1, 0.5), ("bfl", None, 2, -0.3)],
}


@pytest.fixture(scope="module")
def engine():
    from ditto.engine import Engine

    return Engine.from_pretrained(tiny_klein("distilled"), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def reference():
    from diffusers import Flux2KleinPipeline

    pipe = Flux2KleinPipeline.from_pretrained(str(tiny_klein("distilled")), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def lora_file(tmp_path, layout: str, alpha: float | None = None, seed: int = 0, modulation=False):
    path = tmp_path / f"{layout}-{alpha}-{seed}-{modulation}.safetensors"
    return build_tiny_flux2_lora(path, tiny_klein("distilled"), layout, 4, alpha, seed, modulation)


def weights(engine) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in engine.pipeline.transformer.state_dict().items()}


def run_reference(reference, request: dict) -> torch.Tensor:
    kwargs = {k: v for k, v in request.items() if k != "seed"}
    with torch.no_grad():
        return reference(**kwargs, generator=torch.Generator("cpu").manual_seed(request["seed"])).images


@pytest.mark.parametrize("case", list(CASES))
def test_lora_matches_diffusers_load_lora_weights(engine, reference, case, tmp_path):
    loras = [(lora_file(tmp_path, layout, alpha, seed), scale) for layout, alpha, seed, scale in CASES[case]]
    names = [f"lora{i}" for i in range(len(loras))]
    for name, (path, _) in zip(names, loras):
        reference.load_lora_weights(str(path), adapter_name=name)
    reference.set_adapters(names, [scale for _, scale in loras])
    try:
        theirs = run_reference(reference, REQUEST)
    finally:
        reference.delete_adapters(names)
    for path, scale in loras:
        engine.load_lora(path, scale)
    try:
        ours = engine.generate(**REQUEST).latents["image"]
    finally:
        engine.unload_lora()
    lora_free = engine.generate(**REQUEST).latents["image"]
    assert (lora_free - theirs).abs().max().item() > 1e-2, "the LoRA does not change the result"
    check_at_most("flux2-klein", "lora_latents_max_abs", (ours - theirs).abs().max().item(), f"lora {case}")


def test_scale_zero_equals_no_lora(engine, tmp_path):
    plain = engine.generate(**REQUEST).latents["image"]
    engine.load_lora(lora_file(tmp_path, "bfl"), 0.0)
    try:
        assert torch.equal(engine.generate(**REQUEST).latents["image"], plain)
    finally:
        engine.unload_lora()


def test_fuse_generate_unfuse_restores_every_weight_bit_for_bit(engine, tmp_path):
    before = weights(engine)
    engine.load_lora(lora_file(tmp_path, "peft", 8.0, seed=4, modulation=True), 0.8)
    engine.load_lora(lora_file(tmp_path, "kohya", 2.0, seed=5), -1.5)
    changed = weights(engine)
    assert sum(not torch.equal(changed[k], before[k]) for k in before) >= 30
    engine.generate(**REQUEST)
    engine.unload_lora()
    after = weights(engine)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert all(after[k].dtype == before[k].dtype for k in before)


def test_layouts_give_the_same_weights(engine, tmp_path):
    """One LoRA written three ways (alpha 8 != rank 4 in each layout's own place) fuses to the same bits."""
    fused = {}
    for layout in ("peft", "bfl", "kohya"):
        engine.load_lora(lora_file(tmp_path, layout, 8.0, seed=6, modulation=layout != "kohya"), 0.6)
        fused[layout] = weights(engine)
        engine.unload_lora()
    for key in fused["peft"]:
        assert torch.equal(fused["peft"][key], fused["bfl"][key]), key
        if not key.startswith("norm_out."):  # diffusers' kohya converter has no final modulation
            assert torch.equal(fused["peft"][key], fused["kohya"][key]), key


def test_bfl_final_modulation_is_swapped_to_scale_shift(engine, tmp_path):
    """BFL's final adaLN emits (shift, scale); ditto's norm_out.linear (scale, shift), as diffusers' weight
    converter has it. A BFL LoRA there must change the rows of the same meaning."""
    config = engine.pipeline.transformer.norm_out.linear.weight.shape
    down = torch.randn(2, config[1], generator=torch.Generator().manual_seed(7))
    up = torch.randn(config[0], 2, generator=torch.Generator().manual_seed(8))
    path = tmp_path / "final.safetensors"
    write_lora(path, {"final_layer.adaLN_modulation.1": (down, up)}, "bfl")
    base = weights(engine)["norm_out.linear.weight"]
    engine.load_lora(path, 1.0)
    try:
        delta = engine.pipeline.transformer.norm_out.linear.weight - base
    finally:
        engine.unload_lora()
    shift_rows, scale_rows = (up @ down).chunk(2, dim=0)
    torch.testing.assert_close(delta, torch.cat([scale_rows, shift_rows]), rtol=0, atol=1e-6)


def test_lora_for_another_model_is_a_clear_error(engine, tmp_path):
    before = weights(engine)
    ltx_keys = tmp_path / "ltx.safetensors"
    a, b = torch.zeros(4, 32), torch.zeros(32, 4)
    save_file(
        {
            "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": a,
            "diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight": b,
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": a.clone(),
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": torch.zeros(96, 4),
        },
        str(ltx_keys),
    )
    with pytest.raises(
        InvalidParameter, match=r"1 keys that name no module.*transformer_blocks\.0\.attn1\.to_q"
    ):
        engine.load_lora(ltx_keys, 1.0)
    # Right names, wrong sizes (a LoRA for a bigger Klein): refused before any weight changes.
    config = read_config(tiny_klein("distilled"), "transformer")
    bigger = random_lora(dict(config, num_attention_heads=4), seed=9)
    write_lora(tmp_path / "bigger.safetensors", bigger, "bfl")
    with pytest.raises(InvalidParameter, match=r"does not fit this model: transformer\."):
        engine.load_lora(tmp_path / "bigger.safetensors", 1.0)
    after = weights(engine)
    assert all(torch.equal(after[k], before[k]) for k in before)
