"""Native Qwen-Image MMDiT against diffusers' QwenImageTransformer2DModel: same keys, same output, with a
text mask and several images in the sequence, for each config variant."""

from __future__ import annotations

import pytest
import torch

from ditto.models.qwen_image.transformer import QwenImageTransformer

from helpers.thresholds import check_at_most

TINY = dict(
    patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
    joint_attention_dim=32, axes_dims_rope=(4, 6, 6),
)  # fmt: skip
VARIANTS = {
    "base": {},
    "zero_cond_t": {"zero_cond_t": True},
    "layer3d_rope": {"use_layer3d_rope": True},
    "additional_t_cond": {"use_additional_t_cond": True},
}


def run_both(
    reference, native, x, text, timestep, shapes, mask, **extra
) -> tuple[torch.Tensor, torch.Tensor]:
    """(diffusers' output, ditto's) on the same inputs: diffusers' keyword call, ditto's positional one."""
    with torch.no_grad():
        expected = reference(
            hidden_states=x, encoder_hidden_states=text, encoder_hidden_states_mask=mask, timestep=timestep,
            img_shapes=[shapes] * x.shape[0], return_dict=False, **extra,
        )[0]  # fmt: skip
        return expected, native(x, text, timestep, shapes, mask, **extra)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_native_matches_diffusers(variant):
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    reference = QwenImageTransformer2DModel(**TINY, **VARIANTS[variant]).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0, 0.3)  # beyond the default init's small scale, so every weight matters
    config = {k: v for k, v in reference.config.items() if not k.startswith("_")}
    native = QwenImageTransformer(**config).eval()
    assert set(native.state_dict()) == set(reference.state_dict())
    native.load_state_dict(reference.state_dict(), strict=True)

    shapes = [(1, 4, 6), (1, 3, 5)]  # generated image, then a reference image (edit layout)
    tokens = sum(f * h * w for f, h, w in shapes)
    x, text = torch.randn(2, tokens, 16), torch.randn(2, 7, 32)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0  # the second prompt is shorter: padding must not be attended to
    timestep = torch.tensor([0.7, 0.7])
    extra = {"additional_t_cond": torch.tensor([0, 1])} if variant == "additional_t_cond" else {}
    expected, got = run_both(reference, native, x, text, timestep, shapes, mask, **extra)
    check_at_most("qwen-image-transformer", "output_max_abs", float((got - expected).abs().max()), variant)

    # The mask matters: padding changed to garbage must not move the masked sample's output.
    noisy = text.clone()
    noisy[1, 4:] = 100.0
    with torch.no_grad():
        again = native(x, noisy, timestep, shapes, mask, **extra)
    assert torch.equal(again[1], got[1])
