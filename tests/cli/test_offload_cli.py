"""`--max-gpu-memory` and `--offload` on the command line: the plan printed for the request given, a budget too
small or `--offload disk` one error line naming the smallest budget or the reason, never a traceback."""

from __future__ import annotations

from pathlib import Path

from ditto.cli import build_parser, engine_options, main

FOX = ["generate", "--model", "tiny-ltx2", "--prompt", "a red fox", "--height", "64", "--width", "64"]
FOX += ["--num-frames", "9", "--steps", "2", "--seed", "0"]


def errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_the_flags_become_engine_options() -> None:
    args = build_parser().parse_args(
        [*FOX, "--output", "x.mp4", "--max-gpu-memory", "24GiB", "--offload", "cpu"]
    )
    options = engine_options(args)
    assert options.max_gpu_memory == "24GiB" and options.offload == "cpu"


def test_a_budget_too_small_names_the_smallest_and_that_one_runs(tmp_path: Path, capsys) -> None:
    output = str(tmp_path / "fox.mp4")
    assert main([*FOX, "--output", output, "--max-gpu-memory", "64KiB"]) == 2
    (line,) = errors(capsys)
    assert line.startswith("error: max_gpu_memory='64KiB' is too small for ltx2; the smallest that works")
    smallest = line.split('max_gpu_memory="')[1].rstrip('"')
    assert main([*FOX, "--output", output, "--max-gpu-memory", smallest]) == 0
    err = capsys.readouterr().err
    assert "offload plan for ltx2 within" in err and "denoise" in err  # planned for this request
    assert Path(output).exists()


def test_disk_offload_is_refused_with_its_reason(tmp_path: Path, capsys) -> None:
    assert main([*FOX, "--output", str(tmp_path / "fox.mp4"), "--offload", "disk"]) == 2
    (line,) = errors(capsys)
    assert "offload='disk' is not supported" in line and 'use offload="cpu"' in line
