"""LTX-2's STG prefix reuse in parallel engines (CPU, gloo, one torch thread per rank): on 2 and 4 processes,
for Ulysses, CFG-parallel and both, the loop with the STG pass resuming from the conditional pass equals the
same parallel loop with the STG pass run whole, bit for bit, and the one-process loop within the parallel
bound (tests/parallel/test_parallel_ranks.py); and the STG pass ran only the blocks after its branch where the
conditional pass ran on its rank (Ulysses: always; CFG: when the split deals both to one group, P > d), the
whole pass elsewhere (P = d: each pass on a group of its own).
"""

from __future__ import annotations

import pytest

from helpers.parallel_prefix import BRANCH, CASES, STEPS, TIMEOUT_S
from helpers.spawn import run_ranks

LATENTS_BOUND = 1e-5  # as tests/parallel/test_parallel_ranks.py: Ulysses changes only the order of sums
BLOCKS = 6
PERTURBED = "perturbed"
# Per case: the split its loop used (cfg groups, sequence ranks) and what its STG pass ran: "resumed" (the
# blocks after the branch, on every step), "whole" (every block), or "fewer" (under a step cache: fewer).
EXPECTED = {
    "ulysses 2, 4 passes": ((1, 2), "resumed"),
    "ulysses 2, audio sharded, 3 passes": ((1, 2), "resumed"),
    "cfg 2, 4 passes": ((2, 1), "resumed"),  # [cond, STG] [uncond, isolated]
    "cfg 2, 3 passes": ((2, 1), "resumed"),  # [cond, STG] [uncond]
    "cfg 2, 2 passes": ((2, 1), "whole"),  # [cond] [STG]: the tap is on the other rank
    "ulysses 2, step cache, whole-plan middle": ((1, 2), "fewer"),
    "ulysses 2, step cache, branch in the tail": ((1, 2), "fewer"),
    "cfg 2, step cache": ((2, 1), "fewer"),
    "cfg 2 x ulysses 2, audio sharded": ((2, 2), "resumed"),
    "cfg 4, 4 passes": ((4, 1), "whole"),  # one pass per rank
    "cfg 4, 3 passes": ((2, 2), "resumed"),  # 3 passes over cfg=4: 2 groups of 2 sequence ranks
}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    from ditto.tiny.ltx2 import build_tiny

    folder = tmp_path_factory.mktemp("prefix-models") / "ltx"
    build_tiny(folder, "2.0", transformer_layers=BLOCKS)
    return str(folder)


def ranks(world: int, model: str) -> list[dict]:
    out = run_ranks(
        "helpers.parallel_prefix:run_cases", world, deadline_s=300, timeout_s=TIMEOUT_S, model=model
    )
    assert [code for code, _ in out] == [0] * world, f"exit codes {[code for code, _ in out]}"
    return [result for _, result in out]


@pytest.fixture(scope="module")
def two(model) -> list[dict]:
    return ranks(2, model)


@pytest.fixture(scope="module")
def four(model) -> list[dict]:
    return ranks(4, model)


def check_case(per_rank: list[dict], name: str) -> None:
    split, stg = EXPECTED[name]
    found = [rank[name] for rank in per_rank]
    for rank, case in enumerate(found):
        assert case["equal"], (name, rank, "prefix reuse changed the parallel result")
        assert case["vs one process"] <= LATENTS_BOUND, (name, rank, case["vs one process"])
        assert case["split shared"] == case["split whole"] == split, (name, rank, case)
        assert case["cache shared"] == case["cache whole"], (name, rank, case)
        others = [
            {k: v for k, v in case[f"blocks {run}"].items() if k != PERTURBED} for run in ("shared", "whole")
        ]
        assert others[0] == others[1], (name, rank, case)
    runs_stg = [case for case in found if PERTURBED in case["blocks whole"]]
    assert runs_stg, (name, "no rank ran the STG pass")
    shared = [case["blocks shared"][PERTURBED] for case in runs_stg]
    whole = [case["blocks whole"][PERTURBED] for case in runs_stg]
    if stg == "fewer":
        assert all(s < w for s, w in zip(shared, whole, strict=True)), (name, shared, whole)
        assert any(kind["cached"] for case in found for kind in case["cache shared"].values()), name
        return
    assert whole == [STEPS * BLOCKS] * len(runs_stg), (name, whole)
    want = STEPS * (BLOCKS - BRANCH) if stg == "resumed" else STEPS * BLOCKS
    assert shared == [want] * len(runs_stg), (name, shared)


@pytest.mark.parametrize("name", sorted(CASES[2]))
def test_two_ranks_reuse_the_stg_prefix_where_it_is_local(two, name) -> None:
    check_case(two, name)


@pytest.mark.parametrize("name", sorted(CASES[4]))
def test_four_ranks_reuse_the_stg_prefix_where_it_is_local(four, name) -> None:
    check_case(four, name)
