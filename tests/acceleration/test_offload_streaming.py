"""Block streaming and host homes on the CPU (acceleration/offload: host, mover, streaming).

On the CPU the "device" copies are fresh host tensors, so every move runs; each test checks the moves
themselves (a block never runs on its home tensors, at most two streamed blocks are on the device at once,
a block a step cache skips is never loaded), not only that the numbers come out equal."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo.testing
from torch import nn

from ditto.acceleration.offload.host import HostStore
from ditto.acceleration.offload.memory import module_tensors, tensor_bytes
from ditto.acceleration.offload.mover import Mover
from ditto.acceleration.offload.streaming import LayerHooks, StreamBlocks
from ditto.acceleration.step_cache.feature import segment
from ditto.loading.lora import LoraFile, LoraPair, LoraStack
from ditto.runtime import BlockCall, BlockPlan, LoopState, PassContext, PassKind, run_block_loop

CPU = torch.device("cpu")


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.register_buffer("gain", torch.rand(width) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.linear(x)) * self.gain


def blocks(count: int = 8, width: int = 16) -> nn.ModuleList:
    torch.manual_seed(0)
    return nn.ModuleList(Block(width) for _ in range(count)).eval().requires_grad_(False)


def plan_of(modules: nn.ModuleList) -> BlockPlan:
    return BlockPlan([BlockCall(m, lambda streams, m=m: (m(streams[0]),)) for m in modules])


def offload(modules: nn.ModuleList, resident: set[int]) -> Mover:
    """The blocks' tensors moved to homes, the `resident` blocks loaded (as a stage's entry leaves them)."""
    mover = Mover(CPU, HostStore(pin=False))
    mover.store.adopt(module_tensors(modules))
    mover.load(module_tensors([modules[i] for i in sorted(resident)]))
    return mover


def watch(mover: Mover, modules: nn.ModuleList) -> list[int]:
    """Per block call, how many blocks had device copies; a block running on its homes fails the test."""
    loaded_counts = []

    def check(module: nn.Module, args: tuple) -> None:
        tensors = module_tensors([module])
        assert all(mover.is_loaded(t) and not mover.store.at_home(t) for t in tensors), "ran on its homes"
        loaded_counts.append(sum(all(mover.is_loaded(t) for t in module_tensors([m])) for m in modules))

    for module in modules:
        module.register_forward_pre_hook(check)
    return loaded_counts


def context(*features) -> PassContext:
    return PassContext((PassKind.COND,), 0, 1.0, LoopState(num_steps=1, features=features))


def test_streamed_blocks_run_loaded_two_at_most_and_go_home_after() -> None:
    modules = blocks()
    x = torch.randn(3, 16)
    expected = plan_of(modules).run((x,))[0]
    resident = {0, 2, 4, 6}
    mover = offload(modules, resident)
    counts = watch(mover, modules)
    feature = StreamBlocks(mover)
    for _ in range(3):  # three passes of one loop
        moved = mover.moved_bytes
        out = run_block_loop(plan_of(modules), (x,), context(feature))[0]
        assert torch.equal(out, expected)
        streamed = [modules[i] for i in range(8) if i not in resident]
        assert mover.moved_bytes - moved == tensor_bytes(module_tensors(streamed))  # each loaded once
    assert max(counts) <= len(resident) + 2  # the running streamed block and the next one arriving
    assert mover.loaded_bytes() == tensor_bytes(module_tensors([modules[i] for i in resident]))
    for i in set(range(8)) - resident:
        assert all(mover.store.at_home(t) for t in module_tensors([modules[i]]))


class SkipMiddle:
    """A step cache's shape (acceleration/step_cache): each range it computes goes through `inner` as a plan
    of its own; blocks [2, 5) are replaced from the second pass on by the residual of the first."""

    def __init__(self) -> None:
        self.residual: torch.Tensor | None = None

    def run_blocks(self, plan, streams, ctx, inner):
        streams = inner(segment(plan, 0, 2), streams, ctx)
        if self.residual is None:
            after = inner(segment(plan, 2, 5), streams, ctx)
            self.residual = after[0] - streams[0]
            streams = after
        else:
            streams = (plan.convert(streams, 2, 5)[0] + self.residual,)
        return inner(segment(plan, 5, len(plan)), streams, ctx)


def test_blocks_a_step_cache_skips_are_never_loaded() -> None:
    modules = blocks()
    x = torch.randn(3, 16)
    reference = SkipMiddle()
    expected = [run_block_loop(plan_of(modules), (x,), context(reference))[0] for _ in range(2)]
    mover = offload(modules, resident={0, 4})
    watch(mover, modules)
    cache, feature = SkipMiddle(), StreamBlocks(mover)  # offload innermost, as enable_offload registers it
    first = run_block_loop(plan_of(modules), (x,), context(cache, feature))[0]
    moved = mover.moved_bytes
    second = run_block_loop(plan_of(modules), (x,), context(cache, feature))[0]
    assert torch.equal(first, expected[0]) and torch.equal(second, expected[1])
    computed = [modules[i] for i in (1, 5, 6, 7)]  # streamed and not skipped
    assert mover.moved_bytes - moved == tensor_bytes(module_tensors(computed))


def test_compiled_blocks_do_not_recompile_when_their_weights_move() -> None:
    modules = blocks(count=4)
    counter = torch._dynamo.testing.CompileCounter()
    for module in modules:
        module.compile(backend=counter, fullgraph=True, dynamic=False)
    with torch.inference_mode():
        x = torch.randn(3, 16)  # an inference tensor like every block's output, so one guard set fits all
        expected = plan_of(modules).run((x,))[0]
    assert counter.frame_count == 1  # one graph serves every block (weights are graph inputs)
    mover = offload(modules, resident={0})
    with torch.inference_mode(), torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            out = run_block_loop(plan_of(modules), (x,), context(StreamBlocks(mover)))[0]
            assert torch.equal(out, expected)
    assert counter.frame_count == 1


def test_text_encoder_layers_stream_through_hooks() -> None:
    from ditto.acceleration.offload.spec import text_encoder_component
    from ditto.tiny.ltx2 import gemma_model

    torch.manual_seed(0)
    model = gemma_model(300, layers=5).eval().requires_grad_(False)
    ids = torch.randint(3, 300, (2, 12))

    def hidden_states() -> list[torch.Tensor]:
        with torch.inference_mode():
            return model(
                input_ids=ids, output_hidden_states=True, logits_to_keep=1, use_cache=False
            ).hidden_states

    expected = hidden_states()
    component = text_encoder_component(model)
    mover = Mover(CPU, HostStore(pin=False))
    mover.store.adopt(component.owned_tensors())
    mover.load(component.fixed_tensors() + module_tensors([component.blocks[0], component.blocks[3]]))
    watch(mover, component.blocks)
    hooks = LayerHooks(mover, component.blocks)
    for _ in range(2):
        got = hidden_states()
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert all(mover.store.at_home(t) for t in module_tensors([component.blocks[1]]))
    assert not any(mover.is_loaded(t) for t in module_tensors([model.model.vision_tower]))  # never run
    hooks.remove()


def test_a_lora_fused_into_loaded_and_home_weights_survives_the_moves() -> None:
    """A LoRA fused while one block is on the device and the other at home: the device copy is written home
    (LoraStack.on_write), the home one fused in place; both equal a resident model's, and unfusing restores
    every weight bit for bit."""
    down, up = torch.randn(2, 16), torch.randn(16, 2)
    lora = LoraFile("test", {f"blocks.{i}.linear": LoraPair(down, up, 1.0) for i in range(2)})
    resident, modules = blocks(count=2), blocks(count=2)
    originals = [m.linear.weight.clone() for m in modules]
    LoraStack({"blocks": resident}).fuse(lora, 0.5)
    mover = offload(modules, resident={0})
    stack = LoraStack({"blocks": modules})
    stack.on_write = mover.write_home
    stack.fuse(lora, 0.5)
    mover.evict(module_tensors(modules))  # the device copy goes: its home must hold the fused weight
    for module, expected in zip(modules, resident, strict=True):
        assert torch.equal(module.linear.weight, expected.linear.weight)
    mover.load(module_tensors([modules[1]]))
    stack.unfuse_all()
    mover.evict(module_tensors(modules))
    assert all(torch.equal(m.linear.weight, w) for m, w in zip(modules, originals, strict=True))


def test_tensors_made_under_inference_mode_are_adopted_as_copies() -> None:
    store = HostStore(pin=False)
    with torch.inference_mode():
        made = torch.randn(4, 4)
    with pytest.raises(ValueError, match="inference tensor"):
        store.adopt([made])
    (managed,) = store.adopt_copies([made])
    assert not managed.is_inference() and torch.equal(managed, made) and store.at_home(managed)
    mover = Mover(CPU, store)
    mover.load([managed])
    assert mover.is_loaded(managed) and not store.at_home(managed) and torch.equal(managed, made)
    mover.evict([managed])
    assert store.at_home(managed)
