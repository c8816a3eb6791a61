"""The block-loop contract in FLUX.2 and Qwen-Image: what each forward's BlockPlan holds, that a feature
receives it with the pass, and that running it in pieces (a step cache's view) changes no bit.
Unsupported transformer configs are CheckpointError."""

from __future__ import annotations

import pytest
import torch

from ditto.errors import CheckpointError
from ditto.models.flux2 import Flux2Transformer
from ditto.models.qwen_image.transformer import QwenImageTransformer
from ditto.runtime import LoopState, PassContext, PassKind

FLUX2 = dict(
    in_channels=16, num_layers=2, num_single_layers=3, attention_head_dim=16, num_attention_heads=2,
    joint_attention_dim=24, timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False,
)  # fmt: skip
QWEN = dict(
    patch_size=2, in_channels=16, out_channels=4, num_layers=3, attention_head_dim=16, num_attention_heads=2,
    joint_attention_dim=32, axes_dims_rope=(4, 6, 6),
)  # fmt: skip


class Capture:
    """Keeps the plan and streams it is given, then runs the blocks [0, k) and [k, end) itself."""

    def __init__(self, k: int | None = None) -> None:
        self.k, self.plans, self.streams = k, [], []

    def run_blocks(self, plan, streams, ctx, inner):
        self.plans.append(plan)
        self.streams.append(streams)
        return inner(plan, streams, ctx) if self.k is None else plan.run(plan.run(streams, 0, self.k), self.k)


def ctx_with(*features) -> PassContext:
    return PassContext((PassKind.COND,), step=0, sigma=1.0, loop=LoopState(num_steps=1, features=features))


def flux2_call():
    torch.manual_seed(0)
    model = Flux2Transformer(**FLUX2).eval()
    g = torch.Generator().manual_seed(1)
    img_ids = torch.cartesian_prod(torch.tensor([0]), torch.arange(3), torch.arange(4), torch.tensor([0]))
    txt_ids = torch.cartesian_prod(torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.arange(5))
    args = (torch.randn(2, 12, 16, generator=g), torch.randn(2, 5, 24, generator=g), torch.tensor([0.7, 0.2]))
    return model, args, dict(img_ids=img_ids, txt_ids=txt_ids)


def qwen_call():
    torch.manual_seed(0)
    model = QwenImageTransformer(**QWEN).eval()
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    x, text = torch.randn(2, 24, 16, generator=g), torch.randn(2, 7, 32, generator=g)
    return model, (x, text, torch.tensor([0.7, 0.2]), [(1, 4, 6)]), dict(encoder_hidden_states_mask=mask)


@torch.no_grad()
def test_flux2_plan_joins_text_and_image_before_the_single_stream_blocks():
    model, args, kwargs = flux2_call()
    capture = Capture()
    model(*args, **kwargs, ctx=ctx_with(capture))
    (plan,), ((img, txt),) = capture.plans, capture.streams
    assert len(plan) == 5 and set(plan.transitions) == {2}
    assert [call.module for call in plan.calls] == [
        *model.transformer_blocks,
        *model.single_transformer_blocks,
    ]
    (joined,) = plan.convert(
        (img, txt), 0, len(plan)
    )  # what a cache skipping every block adds its residual to
    assert torch.equal(joined, torch.cat([txt, img], dim=1))


@torch.no_grad()
def test_qwen_image_plan_is_its_blocks_on_image_and_text():
    model, args, kwargs = qwen_call()
    capture = Capture()
    model(*args, **kwargs, ctx=ctx_with(capture))
    (plan,), ((img, txt),) = capture.plans, capture.streams
    assert [call.module for call in plan.calls] == list(model.transformer_blocks) and not plan.transitions
    assert img.shape[1] == 24 and txt.shape[1] == 7


@pytest.mark.parametrize("call", [flux2_call, qwen_call])
@torch.no_grad()
def test_running_the_plan_in_pieces_changes_no_bit(call):
    model, args, kwargs = call()
    plain = model(*args, **kwargs)
    assert torch.equal(model(*args, **kwargs, ctx=ctx_with()), plain)
    for k in range(len(model.transformer_blocks) + len(getattr(model, "single_transformer_blocks", [])) + 1):
        assert torch.equal(model(*args, **kwargs, ctx=ctx_with(Capture(k))), plain), f"split at block {k}"


@pytest.mark.parametrize(
    ("model_class", "config", "problem"),
    [
        (Flux2Transformer, dict(FLUX2, axes_dims_rope=(4, 4, 4, 8)), "must sum to attention_head_dim"),
        (QwenImageTransformer, dict(QWEN, axes_dims_rope=(4, 6, 8)), "must sum to attention_head_dim"),
        (QwenImageTransformer, dict(QWEN, guidance_embeds=True), "guidance_embeds=True"),
    ],
)
def test_an_unsupported_config_is_a_checkpoint_error(model_class, config, problem):
    with pytest.raises(CheckpointError, match=problem):
        model_class(**config)


def test_loading_a_checkpoint_with_a_bad_transformer_config_names_the_folder(tmp_path):
    import json

    from ditto.loading.modules import build_from_config

    (tmp_path / "transformer").mkdir()
    config = dict(FLUX2, not_a_flux2_key=1)
    (tmp_path / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="transformer: unsupported config .*not_a_flux2_key"):
        build_from_config(Flux2Transformer, tmp_path, "transformer", torch.float32, "cpu")
    config = dict(QWEN, guidance_embeds=True)
    (tmp_path / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="transformer: unsupported config .*guidance_embeds"):
        build_from_config(QwenImageTransformer, tmp_path, "transformer", torch.float32, "cpu")


def test_a_klein_checkpoint_with_an_unsupported_config_is_a_checkpoint_error(tmp_path):
    """Through the Engine: the CLI and the server report a CheckpointError as the checkpoint's fault."""
    import json

    from ditto.engine import Engine
    from ditto.tiny.flux2 import build_tiny_flux2_klein

    build_tiny_flux2_klein(tmp_path)
    path = tmp_path / "transformer" / "config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), axes_dims_rope=[4, 4, 4, 8])))
    with pytest.raises(CheckpointError, match="axes_dims_rope"):
        Engine.from_pretrained(tmp_path)
