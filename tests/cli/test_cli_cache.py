"""`ditto generate --cache SPEC`: the last line says what the step cache computed; a bad spec is exit 2."""

from __future__ import annotations

from pathlib import Path

from ditto.cli import main

ARGS = ["generate", "--model", "tiny-qwen-image", "--prompt", "a fox", "--width", "32", "--height", "32"]


def test_the_last_line_shows_the_cache_stats(tmp_path: Path, capsys) -> None:
    argv = [*ARGS, "--steps", "4", "--cache", "mask:compute=0+3", "--output", str(tmp_path / "fox.png")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "cache mask:compute=0+3: denoise computed cond 2/4"
    assert lines[-2].startswith("time per stage:")


def test_a_bad_spec_is_one_error_line(tmp_path: Path, capsys) -> None:
    assert main([*ARGS, "--cache", "dbcache:threshold=x", "--output", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cache='dbcache:threshold=x' has threshold='x' out of range; dbcache keys:")
    assert "Traceback" not in err
