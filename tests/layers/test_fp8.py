"""FP8 block products (`acceleration/fp8.py`) on the CPU: the FP8 product is the dequantized product,
close to the bf16/float32 one but not equal to it, what is quantized follows the model's exclusions, and
`restore` gives back the exact model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ditto import Engine
from ditto.acceleration.compile import pipeline_transformer
from ditto.acceleration.fp8 import FP8, Fp8Linear, kept_blocks, quantize_fp8, quantize_transformer, restore
from ditto.errors import InvalidParameter
from ditto.models.ltx2.transformer import LTX2Transformer

from helpers.metrics import rel_l2

# e4m3 keeps 3 mantissa bits: a random 64-wide product moves by ~3-4 % (measured 3.5-3.9 %).
FP8_LINEAR_REL_ERROR = (0.005, 0.08)


@pytest.mark.parametrize("scaling", ["rowwise", "tensorwise"])
def test_fp8_linear_is_the_dequantized_product(scaling: str) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    x = torch.randn(3, 5, 64)
    fp8 = Fp8Linear(linear, scaling)
    assert fp8.weight_fp8.dtype == FP8
    rows = x.reshape(-1, 64)
    amax = rows.abs().amax(-1, keepdim=True) if scaling == "rowwise" else rows.abs().amax()
    x_scale = amax / torch.finfo(FP8).max
    x_deq = (rows / x_scale).clamp(-448, 448).to(FP8).float() * x_scale
    w_deq = fp8.weight_fp8.float() * fp8.weight_scale.reshape(-1, 1)
    expected = (x_deq @ w_deq.T + linear.bias).reshape(3, 5, 48)
    got = fp8(x)
    assert got.shape == (3, 5, 48) and got.dtype == torch.float32
    assert rel_l2(got, expected) < 1e-5  # the op computes exactly this, up to float32 summation order
    low, high = FP8_LINEAR_REL_ERROR
    assert low < rel_l2(got, linear(x).detach()) < high  # really quantized, and not broken


def test_zero_rows_stay_zero() -> None:
    fp8 = Fp8Linear(nn.Linear(32, 16, bias=False))
    assert torch.equal(fp8(torch.zeros(4, 32)), torch.zeros(4, 16))


def tiny_ltx2() -> LTX2Transformer:
    from benchmarks.harness.specs import SPECS

    spec = SPECS["tiny-ltx2"]
    torch.manual_seed(0)
    return spec.native(spec.config).eval()


def fp8_modules(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, Fp8Linear)]


def test_ltx2_keeps_the_official_blocks_in_bf16() -> None:
    assert kept_blocks(48, *LTX2Transformer.fp8_keep_blocks) == {0, 43, 44, 45, 46, 47}
    model = tiny_ltx2()  # 2 blocks: the first and the last five cover both
    assert quantize_transformer(model) == [] and fp8_modules(model) == []


def test_quantize_then_restore_is_exact_and_skips_timestep_layers() -> None:
    from benchmarks.harness.specs import SPECS

    spec = SPECS["tiny-qwen-image"]
    torch.manual_seed(0)
    model = spec.native(spec.config).eval()
    inputs = spec.inputs(
        spec.config, spec.default_shape, torch.device("cpu"), torch.float32, torch.Generator().manual_seed(0)
    )[1]
    with torch.no_grad():
        before = model(**inputs)[0].clone()
        swaps = quantize_fp8(model)
        names = fp8_modules(model)
        quantized = model(**inputs)[0].clone()
        restore(swaps)
        after = model(**inputs)[0]
    assert names and all(name.startswith("transformer_blocks.") for name in names)
    assert not any("_mod" in name for name in names)  # modulation layers stay in the model's dtype
    assert len(names) == len(swaps)
    assert 1e-3 < rel_l2(quantized, before) < 0.2
    assert torch.equal(after, before) and fp8_modules(model) == []


KWARGS = dict(prompt="a cat", height=64, width=64, num_inference_steps=2, seed=3)


def test_engine_fp8_option_quantizes_and_stays_close() -> None:
    plain = Engine.from_pretrained("tiny-flux2-klein").generate(**KWARGS).images
    engine = Engine.from_pretrained("tiny-flux2-klein", quantization="fp8")
    assert fp8_modules(pipeline_transformer(engine.pipeline))
    images = engine.generate(**KWARGS).images
    assert images.shape == plain.shape
    difference = float(np.abs(images.astype(np.float64) - plain.astype(np.float64)).mean())
    print(f"tiny Klein, FP8 vs float32 images: mean abs difference {difference:.2e} (pixels in [0, 1])")
    assert 0 < difference < 0.02


def test_engine_rejects_unknown_quantization_and_lora_after_quantizing() -> None:
    with pytest.raises(InvalidParameter, match=r"quantization='int4' is not known; one of \['fp8'\]"):
        Engine.from_pretrained("tiny-flux2-klein", quantization="int4")
    engine = Engine.from_pretrained("tiny-flux2-klein", quantization="fp8")
    with pytest.raises(InvalidParameter, match="lora='x.safetensors' cannot be fused or unfused after fp8"):
        engine.load_lora("x.safetensors")
