"""`ditto bench` on the CPU with tiny models: the report has parity and ratios, and bad input is one clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ditto.cli import main


def _report(folder: Path) -> dict:
    (path,) = folder.glob("*.json")
    return json.loads(path.read_text())


def test_bench_tiny_random_model_reports_parity_and_speedups(tmp_path: Path) -> None:
    argv = ["bench", "--model", "tiny-qwen-image", "--device", "cpu", "--preset", "eager"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    report = _report(tmp_path)
    assert report["commit"] and report["torch"]
    runs = {run["variant"]: run for run in report["cases"][0]["runs"]}
    assert set(runs) == {"diffusers-eager", "ditto-eager"}
    ditto = runs["ditto-eager"]
    assert ditto["cosine"] > 0.9999 and ditto["rel_l2"] < 1e-4, "same weights and inputs, float32"
    assert ditto["flops"] > 0 and ditto["ms"] > 0 and ditto["speedup_vs_diffusers-eager"] > 0


def test_bench_loads_a_checkpoint_folder_weights(tmp_path: Path) -> None:
    checkpoint = tmp_path / "tiny"
    assert main(["make-tiny", "ltx2", str(checkpoint)]) == 0
    out = tmp_path / "out"
    argv = ["bench", "--model", str(checkpoint), "--shape", "64x64x9:8:2", "--device", "cpu"]
    assert main([*argv, "--preset", "eager", "--out", str(out)]) == 0
    run = _report(out)["cases"][0]["runs"][-1]
    assert run["label"] == "64x64x9 text8 b2"
    assert run["cosine"] > 0.9999


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "full-size-random:nope"], "model='full-size-random:nope'"),
        (["--model", "tiny-ltx2", "--shape", "64x64"], "shape='64x64' is not WIDTHxHEIGHT"),
    ],
)
def test_bench_bad_input_is_one_clear_error(argv: list[str], message: str, capsys) -> None:
    assert main(["bench", "--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_without_the_harness_says_it_needs_a_source_checkout(monkeypatch, capsys) -> None:
    """An installed wheel has no benchmarks/ package: `ditto bench` says so in one line, generate still works."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "ditto.bench", raising=False)
    for name in ["benchmarks", *(name for name in sys.modules if name.startswith("benchmarks."))]:
        monkeypatch.setitem(sys.modules, name, None)  # every `import benchmarks...` fails, as in a wheel
    assert main(["bench", "--model", "tiny-ltx2"]) == 2
    assert "`ditto bench` needs a source checkout" in capsys.readouterr().err
