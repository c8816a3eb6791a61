"""`ditto generate` / `ditto make-tiny` end to end in subprocesses, on the embedded tiny LTX-2 model."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from ditto.media.video import probe_mp4

DITTO = [sys.executable, "-m", "ditto.cli"]


def run_ditto(args: list[str], cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return subprocess.run(DITTO + args, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fox(cache: Path, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One generation with no --model: the default tiny model is built in the cache on first use."""
    output = tmp_path_factory.mktemp("out") / "fox.mp4"
    args = ["generate", "--prompt", "a red fox in the snow", "--output", str(output)]
    args += [
        "--width",
        "96",
        "--height",
        "64",
        "--num-frames",
        "25",
        "--frame-rate",
        "12",
        "--steps",
        "3",
        "--seed",
        "7",
    ]
    return run_ditto(args, cache), output


def test_generate_writes_mp4_with_video_and_aac_audio(fox) -> None:
    completed, output = fox
    assert completed.returncode == 0, completed.stderr
    info = probe_mp4(output)
    assert (info.frame_count, info.frame_rate, info.width, info.height) == (25, 12.0, 96, 64)
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac" and info.audio_channels == 2
    # 25 frames at 12 fps last 2.08 s; the causal audio VAE drops a few mel frames at the start.
    assert abs(info.audio_duration - 25 / 12) < 0.15, info.audio_duration


def test_generate_records_the_request_in_the_mp4(fox) -> None:
    from ditto import __version__
    from ditto.media.metadata import read_metadata

    completed, output = fox
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == "seed 7"
    meta = read_metadata(output)
    assert (meta["prompt"], meta["seed"], meta["num_inference_steps"]) == ("a red fox in the snow", "7", "3")
    assert meta["guidance_scale"] == "3.0" and meta["stg_scale"] == "1.0", "the official defaults, as run"
    assert meta["negative_prompt"].startswith("blurry, out of focus")
    assert (meta["model"], meta["family"], meta["ditto_version"]) == ("tiny-ltx2", "ltx2", __version__)


def test_generate_prints_time_of_each_stage(fox) -> None:
    completed, _ = fox
    line = [x for x in completed.stdout.splitlines() if x.startswith("time per stage")]
    assert line, completed.stdout
    for stage in ("validate", "load", "encode_text", "denoise", "decode", "write"):
        assert stage in line[0]


def test_make_tiny_writes_the_same_checkpoint_as_the_default(fox, cache: Path, tmp_path: Path) -> None:
    assert fox[0].returncode == 0
    completed = run_ditto(["make-tiny", "ltx2", str(tmp_path / "tiny")], cache)
    assert completed.returncode == 0, completed.stderr
    default = cache / "ditto" / "tiny" / "tiny-ltx2"
    for weights in sorted(default.rglob("*.safetensors")):
        written = tmp_path / "tiny" / weights.relative_to(default)
        assert hashlib.sha256(written.read_bytes()).digest() == hashlib.sha256(weights.read_bytes()).digest()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-frames", "120"], "num_frames=120 is not 8k+1; try 121"),
        (["--width", "100"], "width=100 is not a positive multiple of 32; try 96"),
        (["--steps", "0"], "num_inference_steps=0 must be a int >= 1"),
        (["--guidance-scale", "-1"], "guidance_scale=-1.0 must be a float >= 0.0"),
    ],
)
def test_bad_input_is_one_clear_line(
    flags: list[str], message: str, fox, cache: Path, tmp_path: Path
) -> None:
    completed = run_ditto(["generate", "--prompt", "x", "--output", str(tmp_path / "x.mp4"), *flags], cache)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == f"error: {message}"


def test_unknown_folder_is_a_clear_error(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "notamodel").mkdir()
    completed = run_ditto(
        ["generate", "--model", str(tmp_path / "notamodel"), "--prompt", "x", "--output", "x.mp4"], cache
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert "no known checkpoint" in completed.stderr


def test_missing_and_unexpected_weights_are_named(fox, cache: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(cache / "ditto" / "tiny" / "tiny-ltx2", broken)
    weights = broken / "transformer" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(weights))
    state["surprise.weight"] = state.pop("proj_out.weight")
    save_file(state, str(weights))
    completed = run_ditto(["generate", "--model", str(broken), "--prompt", "x", "--output", "x.mp4"], cache)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert "1 missing: proj_out.weight" in completed.stderr
    assert "1 unexpected: surprise.weight" in completed.stderr


def test_a_subcommand_with_a_missing_package_leaves_generate_working(monkeypatch, capsys) -> None:
    import builtins

    from ditto import cli

    real_import = builtins.__import__

    def no_fastapi(name, *args, **kwargs):
        if name == "fastapi" or name.startswith("fastapi."):
            raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")
        return real_import(name, *args, **kwargs)

    for module in [m for m in __import__("sys").modules if m.startswith(("ditto.server", "fastapi"))]:
        monkeypatch.delitem(__import__("sys").modules, module)
    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    parser = cli.build_parser()  # must not raise
    assert parser.parse_args(["generate", "--prompt", "x", "--output", "x.mp4"]).command == "generate"
    assert cli.main(["serve", "--model", "tiny-ltx2"]) == 2
    assert "`ditto serve` needs the package 'fastapi'" in capsys.readouterr().err
