"""`ditto make-tiny qwen-image` and `ditto generate` with it, end to end in subprocesses."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image


def ditto(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ditto.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen") / "tiny"
    done = ditto("make-tiny", "qwen-image", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


def test_generate_writes_pngs_of_the_asked_size(model, tmp_path):
    output = tmp_path / "fox.png"
    done = ditto(
        "generate", "--model", str(model), "--prompt", "a fox", "--negative-prompt", "blurry",
        "--true-cfg-scale", "3", "--width", "96", "--height", "64", "--steps", "2", "--seed", "7",
        "--num-images", "2", "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for index in range(2):
        assert Image.open(tmp_path / f"fox-{index}.png").size == (96, 64)
    assert "time per stage" in done.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [(("--width", "90"), "width="), (("--image", "in.png"), "image=")],
)
def test_bad_input_is_a_one_line_error(model, tmp_path, args, field):
    done = ditto(
        "generate", "--model", str(model), "--prompt", "a", *args, "--output", str(tmp_path / "x.png")
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and field in errors[0], done.stderr
    assert "Traceback" not in done.stderr
