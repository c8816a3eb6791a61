"""ParallelConfig and the engine's parallel options: every bad value is one InvalidParameter, raised before
anything is loaded or any process is started (no process group in these tests)."""

from __future__ import annotations

import pytest
import torch

from ditto.cli import main
from ditto.engine import Engine
from ditto.errors import InvalidParameter
from ditto.parallel import ParallelConfig
from ditto.parallel.cfg import deal, own_groups
from ditto.runtime import PassKind

COND, UNCOND, PERTURBED, ISOLATED = PassKind.COND, PassKind.UNCOND, PassKind.PERTURBED, PassKind.ISOLATED


def test_gpus_split_into_cfg_and_ulysses() -> None:
    assert ParallelConfig.for_gpus(4) == ParallelConfig(cfg=4, ulysses=1)
    assert ParallelConfig.for_gpus(8, ulysses=2).cfg == 4
    assert ParallelConfig.of(2) == ParallelConfig(cfg=2) and ParallelConfig.of(1) is None
    assert ParallelConfig.of({"gpus": 4, "ulysses": 2, "audio": "shard"}) == ParallelConfig(2, 2, "shard")
    with pytest.raises(InvalidParameter, match=r"ulysses=3 does not divide gpus=4; one of \[1, 2, 4\]"):
        ParallelConfig.for_gpus(4, ulysses=3)
    with pytest.raises(InvalidParameter, match="unknown keys"):
        ParallelConfig.of({"gpu": 2})
    # The CLI's text (--gpus): N[:key=value,...]
    assert ParallelConfig.of("4:ulysses=2,audio=shard,text=split,vae=off") == ParallelConfig(
        cfg=2, ulysses=2, audio="shard", text="split", vae=False
    )
    with pytest.raises(InvalidParameter, match="has 'ulyses=2'"):
        ParallelConfig.of("4:ulyses=2")


def test_more_processes_than_gpus_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(
        InvalidParameter, match=r"gpus=4 is more than the 2 GPU\(s\) of this machine; at most 2"
    ):
        ParallelConfig(cfg=2, ulysses=2).check(torch.device("cuda"))
    with pytest.raises(InvalidParameter, match="names one GPU"):
        ParallelConfig(cfg=2).check(torch.device("cuda", 0))
    ParallelConfig(cfg=2).check(torch.device("cuda"))  # fits


@pytest.mark.parametrize(
    ("parallel", "field"),
    [
        ({"gpus": 4, "ulysses": 3}, "ulysses"),
        (ParallelConfig(cfg=0), "cfg"),
        (ParallelConfig(audio="half"), "parallel.audio"),
    ],
)
def test_engine_refuses_a_bad_split_before_loading(parallel, field) -> None:
    # The model does not exist: reaching the loader would be a CheckpointError instead.
    with pytest.raises(InvalidParameter) as error:
        Engine.from_pretrained("/no/such/model", parallel=parallel)
    assert error.value.field == field


def test_cli_refuses_a_bad_split_before_loading(capsys, tmp_path) -> None:
    code = main(["generate", "--model", "/no/such/model", "--output", str(tmp_path / "a.mp4"), "--prompt", "a fox",
                 "--gpus", "4:ulysses=3"])  # fmt: skip
    assert code == 2
    assert "error: ulysses=3 does not divide gpus=4" in capsys.readouterr().err


def test_passes_are_dealt_in_runs_and_a_pair_stays_batched() -> None:
    kinds = [UNCOND, COND, PERTURBED, ISOLATED]
    assert deal(kinds, 2) == [(UNCOND, COND), (PERTURBED, ISOLATED)]
    assert deal(kinds[:3], 2) == [(UNCOND, COND), (PERTURBED,)]
    assert deal(kinds, 4) == [(kind,) for kind in kinds]
    groups = [(UNCOND, COND), (PERTURBED,), (ISOLATED,)]
    assert own_groups(groups, (UNCOND, COND)) == [(UNCOND, COND)]  # wholly mine: one batch of two
    assert own_groups(groups, (COND, PERTURBED)) == [(COND,), (PERTURBED,)]  # a part of the pair: alone
