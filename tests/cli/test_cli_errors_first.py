"""`ditto generate` refuses what it can before loading anything (issue 26, points 2 and 5).

The checkpoints here have unreadable weights: a request error that shows at all was found without reading
a weight (reading one fails with a checkpoint error first). Each error is one `error:` line, exit 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ditto.cli import main
from ditto.engine import resolve_model

from helpers.flux2 import tiny_klein
from helpers.qwen_image import tiny_qwen_image


def broken_copy(folder: Path, dest: Path) -> Path:
    """A copy of a checkpoint folder whose every weight file is garbage (configs intact)."""
    shutil.copytree(folder, dest)
    for weights in dest.rglob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    return dest


@pytest.fixture(scope="module")
def broken_ltx2(tmp_path_factory) -> Path:
    return broken_copy(resolve_model("tiny-ltx2")[1], tmp_path_factory.mktemp("ltx2") / "broken")


def errors_of(capsys, argv: list[str]) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


def test_bad_requests_fail_before_any_weight_is_read(broken_ltx2: Path, tmp_path: Path, capsys) -> None:
    model = ["generate", "--model", str(broken_ltx2), "--prompt", "a fox"]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = {
        ("--num-frames", "120"): "error: num_frames=120 is not 8k+1; try 121",
        ("--width", "100"): "error: width=100 is not a positive multiple of 32; try 96",
        ("--pipeline", "two-stage"): "needs a latent upsampler",
        (
            "--true-cfg-scale",
            "3",
        ): "error: --true-cfg-scale=3.0 is not taken by ltx2 models; ltx2 takes --prompt,",
        ("--output", str(tmp_path / "fox.png")): "is not an .mp4 path; video models write MP4 files",
        (
            "--output",
            str(tmp_path),
        ): f"error: output='{tmp_path}' is a folder; give a file name, or --output-dir",
        ("--output", str(a_file / "fox.mp4")): f"cannot be written: {a_file} is a file, not a folder",
        ("--output", str(a_file / "sub" / "fox.mp4")): "cannot be written (Not a directory: ",
        ("--output-dir", str(a_file)): f"error: output_dir='{a_file}' cannot be written: {a_file} is a file",
        ("--lora", f"{tmp_path / 'style.safetensors'}:abc"): "has a scale 'abc' that is not a number",
    }
    for flags, expected in cases.items():
        code, errors = errors_of(capsys, [*model, *flags])
        assert code == 2 and len(errors) == 1 and expected in errors[0], (flags, errors)
    assert not (tmp_path / "fox.png").exists()


def test_a_good_request_on_unreadable_weights_is_one_line(broken_ltx2: Path, tmp_path: Path) -> None:
    """The process itself: exit 2 and one error line naming the broken file, no traceback."""
    argv = ["generate", "--model", str(broken_ltx2), "--prompt", "a fox", "--output-dir", str(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ditto", *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "diffusion_pytorch_model.safetensors is not a readable safetensors file" in line
    assert not list(tmp_path.iterdir()), "nothing is written for a failed run"


@pytest.fixture(scope="module")
def broken_images(tmp_path_factory) -> dict[str, Path]:
    """Broken copies of the tiny image models (built here, before any test captures the logs)."""
    folders = {
        "klein": tiny_klein("distilled"),
        "t2i": tiny_qwen_image("t2i"),
        "edit": tiny_qwen_image("edit"),
    }
    root = tmp_path_factory.mktemp("broken")
    return {kind: broken_copy(folder, root / kind) for kind, folder in folders.items()}


@pytest.mark.parametrize(
    ("kind", "flags", "expected"),
    [
        ("klein", ["--width", "100"], "width=100 is not a positive multiple of 16"),
        ("klein", ["--num-frames", "9"], "--num-frames=9 is a video parameter"),
        ("t2i", ["--height", "100"], "height=100 is not a positive multiple of 16"),
        ("t2i", ["--image", "x.png"], "--image=['x.png'] is not taken by qwen-image models"),
        ("edit", [], "image=None is required by an edit model"),
    ],
)
def test_image_families_check_before_loading(broken_images, kind, flags, expected, capsys) -> None:
    argv = ["generate", "--model", str(broken_images[kind]), "--prompt", "a cat", *flags]
    code, errors = errors_of(capsys, argv)
    assert code == 2 and len(errors) == 1 and expected in errors[0], errors


def test_official_file_checks_from_its_metadata(tmp_path: Path, capsys, monkeypatch) -> None:
    from ditto.loading import folder
    from ditto.tiny.ltx_official import build_tiny_official

    path, gemma = build_tiny_official(tmp_path, "2.3")

    def no_weights(*args, **kwargs):
        raise AssertionError("a weight file was read before the request was checked")

    monkeypatch.setattr(folder, "read_weights", no_weights)
    argv = ["generate", "--model", str(path), "--prompt", "a fox", "--output-dir", str(tmp_path / "out")]
    code, errors = errors_of(capsys, argv)
    assert code == 2 and "text_encoder=None is required" in errors[0]
    code, errors = errors_of(capsys, [*argv, "--text-encoder", str(gemma), "--num-frames", "120"])
    assert code == 2 and errors == ["error: num_frames=120 is not 8k+1; try 121"]


def test_loras_are_checked_before_loading(tmp_path: Path, capsys, monkeypatch) -> None:
    from ditto.engine import Engine

    def must_not_load(*args, **kwargs):
        raise AssertionError("loaded before checking the LoRA")

    monkeypatch.setattr(Engine, "from_pretrained", must_not_load)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    cut = tmp_path / "cut.safetensors"
    save_file({"a.lora_A.weight": torch.zeros(4, 64)}, str(cut))
    cut.write_bytes(cut.read_bytes()[:-100])
    model = ["generate", "--model", str(tiny_klein("distilled")), "--prompt", "a cat"]
    for lora, expected in [
        (str(corrupt), f"error: lora='{corrupt}' is not a readable safetensors file (SafetensorError: "),
        (str(cut), f"error: lora='{cut}' is not a readable safetensors file (SafetensorError: "),
        (f"{corrupt}:abc", f"error: lora='{corrupt}:abc' has a scale 'abc' that is not a number"),
        (str(tmp_path / "none.safetensors"), f"error: lora='{tmp_path / 'none.safetensors'}' is not a file"),
    ]:
        code, errors = errors_of(capsys, [*model, "--lora", lora])
        assert code == 2 and len(errors) == 1 and errors[0].startswith(expected), errors


def test_compile_on_a_cpu_says_it_takes_a_while(tmp_path: Path, capsys, monkeypatch) -> None:
    from ditto.engine import Engine

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # as a user would, once told it takes minutes

    monkeypatch.setattr(Engine, "from_pretrained", stop)
    argv = ["generate", "--model", str(tiny_klein("distilled")), "--prompt", "a cat", "--compile"]
    argv += ["--output-dir", str(tmp_path)]
    assert main([*argv, "--width", "100"]) == 2
    assert "note:" not in capsys.readouterr().err, "a refused request needs no note"
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "note: --compile on a CPU compiles every block at each new shape first" in err
