"""`ditto generate --model FILE.safetensors --text-encoder GEMMA_DIR`: the official single-file checkpoint from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ditto.cli import main
from ditto.media.video import probe_mp4


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> tuple[Path, Path]:
    from ditto.tiny.ltx_official import build_tiny_official

    return build_tiny_official(tmp_path_factory.mktemp("official"), "2.3")


def test_official_file_writes_an_mp4_with_sound(official_file, tmp_path: Path, capsys) -> None:
    path, gemma = official_file
    out = tmp_path / "fox.mp4"
    argv = ["generate", "--model", str(path), "--text-encoder", str(gemma), "--prompt", "a red fox"]
    size = ["--width", "64", "--height", "64", "--num-frames", "9", "--steps", "2", "--seed", "1"]
    assert main([*argv, *size, "--dtype", "float32", "--output", str(out)]) == 0
    info = probe_mp4(out)
    assert (info.frame_count, info.width, info.height) == (9, 64, 64)
    assert info.audio_codec == "aac"
    assert "encode_text" in capsys.readouterr().out.splitlines()[-1]


def test_official_file_without_text_encoder_is_one_clear_error(official_file, tmp_path: Path, capsys) -> None:
    path, _ = official_file
    argv = ["generate", "--model", str(path), "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "text_encoder" in err and "Traceback" not in err
