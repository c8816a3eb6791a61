"""The mesh's sub-groups wait `ParallelConfig.timeout_s` for a silent rank, as the world group does."""

from __future__ import annotations

from helpers.spawn import run_ranks

TIMEOUT_S = 3.0
SILENT_S = 20.0  # longer than the configured timeout, far shorter than torch's default of 30 min on gloo


def test_a_sequence_group_collective_fails_after_the_configured_timeout() -> None:
    results = run_ranks(
        "helpers.parallel_cases:silent_rank_case", 4, deadline_s=120, timeout_s=60,
        timeout_s_case=TIMEOUT_S, silent_s=SILENT_S,
    )  # fmt: skip
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    waited = results[0][1]
    assert waited["raised"], waited  # the reduce with a silent partner failed instead of waiting it out
    # Gloo notices at its timeout; the margin covers a loaded 2-core machine. Before the fix it waited the
    # whole silence (20 s) and then succeeded.
    assert waited["waited_s"] < TIMEOUT_S + 15, waited
