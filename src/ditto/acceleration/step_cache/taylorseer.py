"""TaylorSeer (Liu et al. 2025, "From Reusing to Forecasting"): a skipped pass's residual extrapolated by a
Taylor series over the kind's computed passes, instead of the last one reused as it is.

The clock is the kind's pass count (one pass per step in an Euler loop). At a computed pass t_k the
residual Y and its finite differences are kept: d1 = (Y_k - Y_j) / (t_k - t_j) over the previous computed pass
t_j, d2 likewise from d1; a skipped pass at t is predicted as Y_k + d1 (t - t_k) + d2 (t - t_k)^2 / 2, the
differences of higher order being left out until two (three) passes have been computed. Cache-DiT's
`TaylorSeerState` (cache-dit 1.5.3) computes the same sums in the same order, but forms no difference before
its own third step: with warm-up under 4 steps (order 1) or 5 (order 2) its first skipped passes reuse a
shorter series than ditto's (docs/architecture.md; tests/acceleration/step_cache/test_vs_cache_dit.py).
"""

from __future__ import annotations

import math

import torch


class TaylorSeer:
    """The Taylor terms of one stream of one pass kind."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.terms: list[torch.Tensor] = []  # Y, d1, d2 at the last computed pass
        self.at = 0  # that pass's clock

    def update(self, value: torch.Tensor, at: int) -> None:
        """A computed pass at `at`: its residual becomes the anchor, the differences follow from the last."""
        terms = [value]
        if self.terms:
            gap = at - self.at
            for i in range(min(self.order, len(self.terms))):
                terms.append((terms[i] - self.terms[i]) / gap)
        self.terms, self.at = terms, at

    def predict(self, at: int) -> torch.Tensor:
        """The residual forecast at `at` (after the last computed pass)."""
        elapsed = at - self.at
        out = self.terms[0]
        for i in range(1, len(self.terms)):
            out = out + self.terms[i] * (elapsed**i / math.factorial(i))
        return out
