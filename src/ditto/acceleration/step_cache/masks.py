"""Static step masks: which steps of a sampling loop compute the transformer, the others reuse its residual.

The presets are Cache-DiT's SCM ("steps computation mask") at 28 steps, written as runs of computed and
cached steps (cache_dit/caching/cache_interface.py `steps_mask`, cache-dit 1.5.3): slow/medium/fast/ultra
compute 18/15/11/8 of 28 steps, the first and the last always. For another step count ditto stretches those
runs in time (a run boundary at b of 28 lands at b * n / 28, rounded), so the share of computed steps, the
dense start and the rhythm of the runs are kept, and the last step always computes. Cache-DiT instead grows
or trims its runs by rules of its own (at 40 steps its "fast" computes 18, ditto's 15); docs/architecture.md
says so and tests/acceleration/step_cache/test_spec.py pins ditto's rule.
"""

from __future__ import annotations

import math

PRESET_STEPS = 28
# (computed run lengths, cached run lengths), alternating, computed first.
PRESETS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "slow": ((8, 3, 3, 2, 1, 1), (1, 2, 2, 2, 3)),
    "medium": ((6, 2, 2, 2, 2, 1), (1, 3, 3, 3, 3)),
    "fast": ((6, 1, 1, 1, 1, 1), (1, 3, 4, 5, 4)),
    "ultra": ((4, 1, 1, 1, 1), (2, 5, 6, 7)),
}


def preset_runs(name: str) -> list[tuple[bool, int]]:
    """The preset's 28-step mask as (compute, length) runs, alternating, computed first."""
    computed, cached = PRESETS[name]
    runs: list[tuple[bool, int]] = []
    for index, run in enumerate(computed):
        runs.append((True, run))
        if index < len(cached):
            runs.append((False, cached[index]))
    return runs


def preset_steps(name: str, num_steps: int) -> frozenset[int]:
    """The steps a preset computes in a loop of `num_steps`: its 28-step runs stretched (or shrunk) in time,
    each run boundary b landing at floor(b * num_steps / 28 + 1/2); the last step always computes."""
    steps, boundary = {num_steps - 1}, 0
    for compute, length in preset_runs(name):
        start = math.floor(boundary * num_steps / PRESET_STEPS + 0.5)
        boundary += length
        stop = math.floor(boundary * num_steps / PRESET_STEPS + 0.5)
        if compute:
            steps.update(range(start, stop))
    return frozenset(steps)


def parse_step_list(text: str) -> tuple[int, ...] | None:
    """'0-7+10+14' -> (0, 1, ..., 7, 10, 14); 'all' -> () meaning every step; None if malformed."""
    if text == "all":
        return ()
    steps: set[int] = set()
    for part in text.split("+"):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            return None
        low, high = int(first), int(last or first)
        if high < low:
            return None
        steps.update(range(low, high + 1))
    return tuple(sorted(steps))
