"""Projection fusion: several Linear layers that read the same input become one matrix product.

The fused weight is built at load time from the checkpoint's separate weights (diffusers names stay the
checkpoint format). The separate layers are re-pointed at views into the fused storage, so memory is not
doubled and `state_dict()` keeps its keys and values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def fuse_linears(linears: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate the layers' weights (and biases) along the output dim; returns (weight, bias).

    Afterwards each layer's weight/bias is a view into the returned tensors. Call it after moving the
    model to its device and dtype: `.to()` copies parameters one by one and would break the sharing
    (results stay right, memory doubles for the fused layers).
    """
    has_bias = {layer.bias is not None for layer in linears}
    if len(has_bias) != 1:
        raise ValueError("cannot fuse Linear layers where only some have a bias")
    if len({layer.in_features for layer in linears}) != 1:
        raise ValueError("cannot fuse Linear layers with different input sizes")
    with torch.no_grad():
        weight = torch.cat([layer.weight for layer in linears])
        bias = torch.cat([layer.bias for layer in linears]) if has_bias.pop() else None
    start = 0
    for layer in linears:
        end = start + layer.out_features
        layer.weight = nn.Parameter(weight[start:end], requires_grad=layer.weight.requires_grad)
        if bias is not None:
            layer.bias = nn.Parameter(bias[start:end], requires_grad=layer.bias.requires_grad)
        start = end
    return weight, bias
