"""`ditto generate` / `ditto make-tiny` with a tiny FLUX.2 Klein checkpoint, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from conftest_flux2 import reference_image, tiny_klein  # noqa: E402


def ditto(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ditto.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_generate_writes_pngs_of_the_asked_size(tmp_path):
    output = tmp_path / "cat.png"
    ref = tmp_path / "ref.png"
    reference_image(80, 64, seed=3).save(ref)
    done = ditto(
        "generate", "--model", str(tiny_klein("distilled")), "--prompt", "a cat", "--image", str(ref),
        "--width", "64", "--height", "48", "--steps", "2", "--seed", "7", "--num-images", "2",
        "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for index in range(2):
        path = tmp_path / f"cat-{index}.png"
        assert path.exists(), done.stdout
        assert Image.open(path).size == (64, 48)
    assert "time per stage" in done.stdout


def test_bad_width_is_a_one_line_error(tmp_path):
    done = ditto(
        "generate", "--model", str(tiny_klein("distilled")), "--prompt", "a cat",
        "--width", "100", "--output", str(tmp_path / "x.png"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: width=100 is not a multiple of 16; try 96"], done.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--image", "/no/such/file.png"], "image[0]='/no/such/file.png' does not exist"),
        (["--num-frames", "9"], "num_frames=9 is a video parameter"),
        (["--prompt", " "], "prompt=' ' is empty"),
    ],
)
def test_bad_input_in_process(tmp_path, capsys, extra, expected):
    from ditto.cli import main

    args = [
        "generate",
        "--model",
        str(tiny_klein("distilled")),
        "--prompt",
        "a cat",
        "--output",
        str(tmp_path / "x.png"),
    ]
    code = main([*args, *extra])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert "Traceback" not in err


def test_make_tiny_writes_a_klein_folder(tmp_path, capsys):
    from ditto.cli import main
    from ditto.registry import detect_family

    assert main(["make-tiny", "flux2-klein", str(tmp_path / "klein")]) == 0
    assert detect_family(tmp_path / "klein").name == "flux2-klein"
