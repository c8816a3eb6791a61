"""Native Qwen-Image MMDiT against diffusers' QwenImageTransformer2DModel in bfloat16: the same rounding
order, so the same bits (max abs 0), for every config variant, with a text mask and a batch of two.

float32 parity (test_qwen_image_transformer.py) cannot see where a cast or a kernel rounds differently;
bf16 can, and 60 blocks amplify one ulp to ~1e-2 relative L2. On CPU this catches the strided output
projections (batch > 1: matmul then a separate bias add, rounded twice). Two further differences show on
CUDA only, and run here too where a GPU is present: the real-form RoPE against diffusers' complex product,
and the fused RMS norm at the text norm's width (measured on an H100: 1.7e-2 and 1.3e-2 relative L2
before, 0 after; layers/norm.py and models/qwen_image/blocks.py say how).
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from test_qwen_image_transformer import VARIANTS, run_both  # the float32 parity test's variants and call

from ditto.models.qwen_image.blocks import rotate
from ditto.models.qwen_image.rope import qwen_rope
from ditto.models.qwen_image.transformer import QwenImageTransformer

# Real head width (128, axes 16/56/56) on a narrow model; text features wider than the model, as Qwen2.5-VL's.
CONFIG = dict(
    patch_size=2, in_channels=64, out_channels=16, num_layers=2, attention_head_dim=128, num_attention_heads=2,
    joint_attention_dim=384, axes_dims_rope=(16, 56, 56),
)  # fmt: skip
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")),
]


def models(variant: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """diffusers' model and ditto's on the same random bf16 weights (norm weights and biases random too)."""
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    reference = QwenImageTransformer2DModel(**CONFIG, **VARIANTS[variant]).eval()
    with torch.no_grad():
        for name, param in reference.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.2 * torch.randn_like(param))
            elif param.ndim == 1:
                param.normal_(0, 0.05)
    config = {k: v for k, v in reference.config.items() if not k.startswith("_")}
    native = QwenImageTransformer(**config).eval()
    native.load_state_dict(reference.state_dict(), strict=True)
    return reference.to(device, torch.bfloat16), native.to(device, torch.bfloat16)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bf16_output_is_bit_identical(variant, device):
    reference, native = models(variant, device)
    shapes = [(1, 6, 8), (1, 4, 6)] if variant == "zero_cond_t" else [(1, 6, 8)]
    tokens = sum(f * h * w for f, h, w in shapes)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, tokens, 64, generator=g).to(device, torch.bfloat16)
    text = (3 * torch.randn(2, 11, 384, generator=g)).to(device, torch.bfloat16)
    mask = torch.ones(2, 11, dtype=torch.long, device=device)
    mask[1, 7:] = 0
    timestep = torch.tensor([0.731, 0.2], device=device)
    extra = {"additional_t_cond": torch.tensor([0, 1], device=device)} if "additional" in variant else {}
    expected, got = run_both(reference, native, x, text, timestep, shapes, mask, **extra)
    assert got.dtype == torch.bfloat16
    diff = (got.float() - expected.float()).abs().max().item()
    assert torch.equal(got, expected), f"bf16 output differs from diffusers: max abs {diff:.3g}"


def test_compiled_rope_form_matches_eager_form():
    """A compiled block rotates with the real cos/sin form (inductor has no complex kernels); in float32 it
    must agree with the complex product the eager block uses to an ulp or so."""
    img, txt = qwen_rope([(1, 6, 8)], 5, (16, 56, 56), 10000, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    for rope in (img, txt):
        q = 3 * torch.randn(2, rope.cis.shape[0], 2, 128, generator=g)
        eager = rotate(q, rope)
        with mock.patch.object(torch.compiler, "is_compiling", return_value=True):
            compiled_form = rotate(q, rope)
        torch.testing.assert_close(compiled_form, eager, rtol=0, atol=2e-6)
        assert not torch.equal(eager, q)
