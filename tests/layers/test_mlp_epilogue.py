"""The GELU-in-epilogue feed-forward (`use_gelu_epilogue`): on the CPU the same ops as the plain path; the
fused CUDA product is measured against diffusers in benchmarks/gpu_speed.py."""

from __future__ import annotations

import torch

from ditto.layers.mlp import GeluFeedForward, linear_gelu_tanh, use_gelu_epilogue


@torch.no_grad()  # inference only, as the engine runs (the custom op has no backward)
def test_epilogue_path_equals_the_plain_path_on_cpu_eager_and_traced() -> None:
    torch.manual_seed(0)
    ff = GeluFeedForward(16, mult=2.0)
    x = torch.randn(2, 5, 16)
    plain = ff(x)
    assert use_gelu_epilogue(ff) == 1
    assert torch.equal(ff(x), plain)
    traced = torch.compile(ff, backend="aot_eager", fullgraph=True)  # the custom op's fake kernel
    assert torch.equal(traced(x), plain)
    use_gelu_epilogue(ff, on=False)
    assert torch.equal(ff(x), plain)


@torch.no_grad()
def test_epilogue_keeps_replaced_projections_own_forward() -> None:
    """An FP8 or LoRA-side `proj` is not a plain Linear: its own forward runs, not the fused product."""
    torch.manual_seed(1)
    ff = GeluFeedForward(8)
    use_gelu_epilogue(ff)

    class Doubled(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    replaced = Doubled(8, 32)
    replaced.load_state_dict(ff.net[0].proj.state_dict())
    x = torch.randn(3, 8)
    expected = torch.nn.functional.gelu(2 * ff.net[0].proj(x), approximate="tanh")
    ff.net[0].proj = replaced
    assert torch.equal(ff.net[0](x), expected)


def test_linear_gelu_tanh_is_the_tanh_gelu() -> None:
    g = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(4, 3, 6, generator=g), torch.randn(10, 6, generator=g), torch.randn(10, generator=g)
    want = torch.nn.functional.gelu(x.double() @ w.double().T + b.double(), approximate="tanh")
    assert (linear_gelu_tanh(x, w, b).double() - want).abs().max() < 1e-5
