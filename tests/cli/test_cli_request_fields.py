"""`ditto generate` reads its request flags from the field table: diffusers spellings reach the family, and
a bad output suffix is one `error:` line (exit 2) before anything is generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from ditto.cli import main

KLEIN = ["generate", "--model", "tiny-flux2-klein", "--prompt", "a cat", "--width", "64", "--height", "64"]
KLEIN_FLAGS = "--prompt, --image, --width, --height, --steps, --guidance-scale, --num-images, --seed, --cache"


def run(capsys, *args: str) -> tuple[int, list[str]]:
    code = main([*KLEIN, *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--num_frames", "9"],
            f"error: --num-frames=9 is a video parameter; flux2-klein makes still images; it takes {KLEIN_FLAGS}",
        ),
        (
            ["--fps", "12"],
            f"error: --frame-rate=12.0 is a video parameter; flux2-klein makes still images; it takes {KLEIN_FLAGS}",
        ),
        (["--num-inference-steps", "0"], "error: num_inference_steps=0 must be an integer >= 1"),
    ],
)
def test_spellings_reach_the_family_check(tmp_path: Path, capsys, flags: list[str], expected: str) -> None:
    code, errors = run(capsys, "--output", str(tmp_path / "cat.png"), *flags)
    assert code == 2 and errors == [expected]


def test_an_unknown_image_suffix_is_refused_before_generating(tmp_path: Path, capsys, monkeypatch) -> None:
    from ditto.engine import Engine

    def must_not_generate(*args, **kwargs):
        raise AssertionError("generated before checking the output path")

    monkeypatch.setattr(Engine, "generate", must_not_generate)
    output = tmp_path / "cat.gif"
    code, errors = run(capsys, "--output", str(output))
    assert code == 2
    assert errors == [
        f"error: output={str(output)!r} is not an image path; use one of .png, .jpg, .jpeg, .webp"
    ]


def test_a_jpeg_output_is_jpeg(tmp_path: Path, capsys) -> None:
    from PIL import Image

    code = main([*KLEIN, "--steps", "1", "--output", str(tmp_path / "cat.jpg")])
    assert code == 0, capsys.readouterr().err
    with Image.open(tmp_path / "cat.jpg") as image:
        assert image.format == "JPEG" and image.size == (64, 64)
