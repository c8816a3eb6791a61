"""`ditto bench` on the CPU with tiny models: the report has parity and ratios, and bad input is one clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

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


def test_bench_refuses_a_model_that_does_not_fit_before_building_it(monkeypatch, capsys) -> None:
    """The trial's `ditto bench --model full-size-random:ltx2 --device cpu` was killed at 22.5 GB: now the
    memory is estimated first (19B parameters, counted on the meta device) and the run refused."""
    from benchmarks.harness import measure, memory

    def must_not_build(*args, **kwargs):
        raise AssertionError("built the model before checking its memory")

    monkeypatch.setattr(memory, "bytes_available", lambda device: 22 * 10**9)
    monkeypatch.setattr(measure, "build_reference", must_not_build)
    assert main(["bench", "--model", "full-size-random:ltx2", "--device", "cpu"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ltx2 needs about 143 GB of host memory (18.88 B parameters in bfloat16)")
    assert "22.0 GB is available" in line and "--device cuda" in line


def test_bench_reports_go_to_their_own_folder_and_never_overwrite(tmp_path: Path, monkeypatch) -> None:
    from benchmarks.harness.driver import run_benchmark
    from ditto.bench import DEFAULT_OUT

    assert DEFAULT_OUT == "ditto-bench"
    monkeypatch.chdir(tmp_path)
    first = run_benchmark([], [], torch.device("cpu"), Path(DEFAULT_OUT), log=lambda line: None)
    second = run_benchmark([], [], torch.device("cpu"), Path(DEFAULT_OUT), log=lambda line: None)
    assert first != second and first.parent == second.parent == Path(DEFAULT_OUT)
    assert second.name == first.name.replace(".json", "-2.json")
    assert json.loads(first.read_text())["cases"] == [] and json.loads(second.read_text())["cases"] == []
