"""AdaLN modulation helpers: table + embedding split, and x * (1 + scale) + shift."""

from __future__ import annotations

import torch

from ditto.layers.modulation import table_modulation
from ditto.layers.norm import modulate


def test_table_modulation_rows_in_order() -> None:
    g = torch.Generator().manual_seed(0)
    n, dim = 6, 5
    table = torch.randn(n, dim, generator=g)
    emb = torch.randn(2, 1, n * dim, generator=g)
    parts = table_modulation(table, emb)
    assert len(parts) == n
    for row, part in enumerate(parts):
        assert part.shape == (2, 1, dim)
        # Row r is table[r] plus the r-th dim-sized chunk of the embedding.
        torch.testing.assert_close(part, table[row] + emb[..., row * dim : (row + 1) * dim], rtol=0, atol=0)


def test_table_modulation_per_token_embedding() -> None:
    g = torch.Generator().manual_seed(1)
    table = torch.randn(2, 4, generator=g)
    emb = torch.randn(3, 7, 8, generator=g)  # one embedding per token
    shift, scale = table_modulation(table, emb)
    assert shift.shape == scale.shape == (3, 7, 4)
    torch.testing.assert_close(scale[2, 6], table[1] + emb[2, 6, 4:], rtol=0, atol=0)


def test_modulate_formula_and_identity() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, generator=g)
    shift, scale = torch.randn(2, 1, 4, generator=g), torch.randn(2, 1, 4, generator=g)
    torch.testing.assert_close(modulate(x, shift, scale), x * (1 + scale) + shift, rtol=0, atol=0)
    zero = torch.zeros(2, 1, 4)
    assert torch.equal(modulate(x, zero, zero), x)
