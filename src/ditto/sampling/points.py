"""Where a model call sits in a sampling loop: the step, the call within the step, and its sigma as a host
float. A loop knows these without reading the device (its schedule is copied to the host once, before the
first step); they name the pass for the block loop's features (`runtime.PassContext`), never enter the math.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepPoint:
    step: int  # 0-based index of the sampling step
    sigma: float  # the call's noise level (host copy of the device value the math uses)
    substep: int = 0  # which model call of the step (res2s: 0 at sigma, 1 at the midpoint, 2 the final x0)
