"""Native FLUX.2 (Klein) transformer against diffusers' Flux2Transformer2DModel in bfloat16: the same
rounding order, so the same bits (max abs 0), at the real head width.

test_flux2_transformer.py holds the tiny-config bf16 check (within 0.02); this one holds ditto to diffusers
bit for bit, as measured on an H100 at full size (benchmarks/RESULTS.md: Klein eager rel L2 0), with a
batch of two and a reference image in the sequence. Runs on CUDA too where a GPU is present.
"""

from __future__ import annotations

import pytest
import torch

from ditto.models.flux2 import Flux2Transformer

# Klein's head layout (128 = 4 axes x 32) on a narrow model: 2 heads, 2 double- and 2 single-stream blocks.
CONFIG = dict(
    patch_size=1, in_channels=128, num_layers=2, num_single_layers=2, attention_head_dim=128,
    num_attention_heads=2, joint_attention_dim=384, timestep_guidance_channels=256, mlp_ratio=3.0,
    axes_dims_rope=(32, 32, 32, 32), rope_theta=2000, eps=1e-6, guidance_embeds=False,
)  # fmt: skip
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")),
]


def inputs(device: str, batch: int = 2, txt_len: int = 9, h: int = 6, w: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    image = torch.cartesian_prod(torch.tensor([0]), torch.arange(h), torch.arange(w), torch.tensor([0]))
    reference = torch.cartesian_prod(torch.tensor([10]), torch.arange(3), torch.arange(4), torch.tensor([0]))
    img_ids = torch.cat([image, reference])
    txt_ids = torch.cartesian_prod(
        torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.arange(txt_len)
    )
    bf16 = dict(device=device, dtype=torch.bfloat16)
    return dict(
        hidden_states=torch.randn(batch, img_ids.shape[0], CONFIG["in_channels"], generator=g).to(**bf16),
        encoder_hidden_states=(
            3 * torch.randn(batch, txt_len, CONFIG["joint_attention_dim"], generator=g)
        ).to(**bf16),
        timestep=torch.tensor([0.731, 0.25][:batch]).to(**bf16),
        img_ids=img_ids.expand(batch, -1, -1).to(device),
        txt_ids=txt_ids.expand(batch, -1, -1).to(device),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_output_is_bit_identical(device):
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(0)
    reference = Flux2Transformer2DModel(**CONFIG).eval()
    with torch.no_grad():  # norm weights away from one, so the q/k norms' rounding matters
        for name, param in reference.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.2 * torch.randn_like(param))
    native = Flux2Transformer(**CONFIG).eval()
    native.load_state_dict(reference.state_dict(), strict=True)
    reference, native = reference.to(device, torch.bfloat16), native.to(device, torch.bfloat16)
    kwargs = inputs(device)
    with torch.no_grad():
        expected = reference(**kwargs, return_dict=False)[0]
        got = native(**kwargs)
    diff = (got.float() - expected.float()).abs().max().item()
    assert torch.equal(got, expected), f"bf16 output differs from diffusers: max abs {diff:.3g}"
