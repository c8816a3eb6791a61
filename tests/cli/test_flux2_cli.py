"""`ditto generate` / `ditto make-tiny` with a tiny FLUX.2 Klein checkpoint, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from helpers.flux2 import reference_image, tiny_klein


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
    assert errors == ["error: width=100 is not a positive multiple of 16; try 96"], done.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--image", "/no/such/file.png"], "image[0]='/no/such/file.png' does not exist"),
        (["--num-frames", "9"], "--num-frames=9 is a video parameter"),
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


def test_lora_flag_with_a_scale_end_to_end(tmp_path):
    """`--lora PATH:0.5` (a BFL-layout LoRA) gives the picture of Engine.load_lora(PATH, 0.5)."""
    import numpy as np

    from ditto.engine import Engine
    from ditto.tiny.flux2_lora import build_tiny_flux2_lora

    folder = tiny_klein("distilled")
    lora = build_tiny_flux2_lora(tmp_path / "style.safetensors", folder, "bfl", seed=3)
    request = dict(prompt="a cat", width=48, height=32, num_inference_steps=2, seed=7)
    done = ditto(
        "generate", "--model", str(folder), "--prompt", request["prompt"], "--width", "48", "--height", "32",
        "--steps", "2", "--seed", "7", "--lora", f"{lora}:0.5", "--output", str(tmp_path / "cat.png"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ours = np.asarray(Image.open(tmp_path / "cat.png"), dtype=np.int16)
    engine = Engine.from_pretrained(folder, device="cpu", dtype="float32")
    plain = np.asarray(engine.generate(**request, output_type="pil").images[0], dtype=np.int16)
    engine.load_lora(lora, 0.5)
    with_lora = np.asarray(engine.generate(**request, output_type="pil").images[0], dtype=np.int16)
    assert np.abs(ours - with_lora).max() <= 1  # thread counts may move float32 by ~1e-6: one level at most
    assert np.abs(ours - plain).mean() > 2, "the LoRA did not change the picture"


def test_lora_for_another_model_is_a_one_line_error(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from ditto.cli import main

    path = tmp_path / "ltx.safetensors"
    save_file(
        {f"transformer.transformer_blocks.0.attn1.to_q.lora_{x}.weight": torch.zeros(4, 4) for x in "AB"},
        str(path),
    )
    code = main([
        "generate", "--model", str(tiny_klein("distilled")), "--prompt", "a cat",
        "--lora", f"{path}:0.5", "--output", str(tmp_path / "x.png"),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "transformer.transformer_blocks.0.attn1.to_q" in errors[0], err
    assert "is it a LoRA for another model?" in errors[0]


def test_quantization_flag_runs_fp8_and_rejects_unknown_values(tmp_path):
    output = tmp_path / "fp8.png"
    done = ditto(
        "generate", "--model", str(tiny_klein("distilled")), "--prompt", "a cat", "--width", "64",
        "--height", "48", "--steps", "2", "--quantization", "fp8", "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Image.open(output).size == (64, 48)
    bad = ditto("generate", "--prompt", "a cat", "--quantization", "int4", "--output", str(output))
    assert bad.returncode == 2 and "invalid choice: 'int4'" in bad.stderr and "fp8" in bad.stderr
