"""Regional compilation: torch.compile each repeated block, not the whole model.

Every block of a DiT runs the same code on different weights, so one compiled graph serves all of them
(parameters are graph inputs) and compile time is that of one block. fullgraph=True makes a graph break
an error instead of a silent slowdown.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

BLOCK_VARIANTS = 64  # compiled variants (shapes x pass layouts) one block may keep


def compile_blocks(
    blocks: Iterable[nn.Module], mode: str | None = None, dynamic: bool | None = False
) -> None:
    """Compile each block in place (nn.Module.compile); the first forward at a new shape compiles.

    dynamic=False specialises on shapes (one recompile per resolution; the limit is torch's
    recompile_limit); mode is torch.compile's (None, "max-autotune-no-cudagraphs", ...).
    """
    # A served LTX-2 already uses 7 of dynamo's default 8 variants per block after three request kinds
    # (stage sizes, STG and isolated passes); under fullgraph the ninth would fail the request. Each new
    # resolution adds one, so a server needs room for dozens.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, BLOCK_VARIANTS)
    for block in blocks:
        block.compile(fullgraph=True, dynamic=dynamic, mode=mode)


def compile_transformer(model: nn.Module, mode: str | None = None) -> None:
    """Regional compile of a DiT: its own `compile_blocks` if it has one, else every `*blocks` ModuleList
    (FLUX.2 has two kinds of block, double- and single-stream)."""
    if hasattr(model, "compile_blocks"):
        model.compile_blocks(mode=mode)
        return
    for name, child in model.named_children():
        if name.endswith("blocks") and isinstance(child, nn.ModuleList):
            compile_blocks(child, mode=mode)


def pipeline_module(pipeline: object, name: str) -> nn.Module | None:
    """A module of a ditto pipeline ("transformer", "vae"), held by the pipeline or by its components."""
    for holder in (pipeline, getattr(pipeline, "components", None)):
        module = getattr(holder, name, None)
        if isinstance(module, nn.Module):
            return module
    return None


def pipeline_transformer(pipeline: object) -> nn.Module | None:
    """The denoising transformer of a ditto pipeline."""
    return pipeline_module(pipeline, "transformer")


def compile_vae_decoder(vae: nn.Module | None) -> bool:
    """torch.compile the VAE's decoder in place (not fullgraph: diffusers' decoders may break graphs).

    Measured reason (benchmarks/NOTES.md): FLUX.2's decode is a quarter of the compiled 4-step pipeline,
    half of it GroupNorm statistics that inductor fuses with the neighbouring convolutions' epilogues."""
    decoder = getattr(vae, "decoder", None)
    if not isinstance(decoder, nn.Module):
        return False
    decoder.compile(dynamic=False)
    return True


def compile_decoder_layers(model: nn.Module) -> int:
    """torch.compile the parts of every decoder layer of a transformers language model (its attention, MLP
    and norms), each part's `forward` on its own; returns the number of layers. Eagerly these layers
    launch 50-70 small kernels each (RMSNorms in float32 step by step, RoPE); compiled, each part is a few
    fused kernels. Measured on an H100: Gemma-3 12B over a CFG pair 155 -> 106 ms; Klein's smaller Qwen3
    only 35.5 -> 30.4 ms, as its host time goes to guard checks instead (its CUDA graph does the rest).

    Not the whole layer: transformers records hidden states and attentions with forward hooks on the
    layer and its attention module, reading a ContextVar that dynamo cannot trace. Compiling a module's
    `forward` rather than its call keeps the module's own hooks outside the graph, and the parts' children
    (projections, q/k norms) carry no hooks. Parameters are graph inputs, so every layer shares one graph
    per kind of part. A second call leaves compiled parts as they are.
    """
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no decoder `layers` to compile")
    for layer in layers:
        for part in layer.children():
            if not getattr(part, "_ditto_compiled_forward", False):
                part.forward = torch.compile(part.forward, fullgraph=True, dynamic=False)
                part._ditto_compiled_forward = True
    return len(layers)


def pipeline_text_model(pipeline: object) -> nn.Module | None:
    """The transformers language model behind a ditto pipeline's text encoder (held directly, or wrapped
    as FLUX.2 Klein's `KleinTextEncoder.model`)."""
    encoder = pipeline_module(pipeline, "text_encoder")
    if encoder is None:
        wrapper = getattr(pipeline, "text_encoder", None)
        encoder = getattr(wrapper, "model", None)
    return encoder if isinstance(encoder, nn.Module) else None
