"""A run can be reproduced and found (issue 26, points 3 and 6): the seed is printed (random when not
given), every file records its request, files are named from the date and the prompt without overwriting,
a batch says which prompt each file came from, and the printed stages add up to the run's wall time."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ditto import __version__
from ditto.cli import main
from ditto.media.metadata import read_metadata

from helpers.flux2 import tiny_klein

PROMPTS = ["A red fox, in the snow!", "a blue whale"]
CONFIG = """
prompt:
  - "A red fox, in the snow!"
  - a blue whale
num_images: 2
steps: 3
width: 64
height: 48
"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path, float]:
    """One `python -m ditto generate` of two prompts x two images, no seed, no --output: the request comes
    from a YAML file and a flag (--steps) overrides it."""
    root = tmp_path_factory.mktemp("batch")
    (root / "request.yaml").write_text(CONFIG)
    argv = ["generate", "--model", str(tiny_klein("distilled")), "--config", str(root / "request.yaml")]
    argv += ["--steps", "2", "--output-dir", str(root / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ditto", *argv], capture_output=True, text=True, env=env, timeout=300
    )
    return done, root, root / "out", time.perf_counter() - started


def written(done: subprocess.CompletedProcess) -> list[tuple[Path, str]]:
    """(file, the prompt note) of each `wrote` line."""
    lines = [re.fullmatch(r"wrote (\S+)(.*)", line) for line in done.stdout.splitlines()]
    return [(Path(m[1]), m[2].strip()) for m in lines if m]


def test_the_seed_is_printed_and_recorded_in_every_file(batch) -> None:
    done, _, out, _ = batch
    assert done.returncode == 0, done.stderr
    seed = int(re.search(r"^seed (\d+)$", done.stdout, re.M)[1])
    files = written(done)
    assert len(files) == 4
    for index, (path, note) in enumerate(files):
        k = index // 2
        assert note == f"(prompt {k + 1}: {PROMPTS[k]!r})"
        meta = read_metadata(path)
        assert meta["prompt"] == PROMPTS[k] and meta["seed"] == str(seed)
        assert meta["num_inference_steps"] == "2", "the flag wins over the config file"
        assert meta["guidance_scale"] == "1.0" and meta["width"] == "64" and meta["height"] == "48"
        assert meta["model"] == str(tiny_klein("distilled")) and meta["family"] == "flux2-klein"
        assert meta["ditto_version"] == __version__ and meta["software"] == f"ditto {__version__}"
        assert (meta["batch_index"], meta["batch_size"]) == (str(index), "4")


def test_files_are_named_from_the_date_and_the_prompt(batch) -> None:
    done, _, out, _ = batch
    names = sorted(path.name for path, _ in written(done))
    today = datetime.date.today().isoformat()
    assert all(re.fullmatch(rf"{today}_\d{{6}}_a-red-fox-in-the-snow-[0-3]\.png", n) for n in names), names
    assert sorted(p.name for p in out.iterdir()) == names


def test_the_same_seed_gives_the_same_files_under_new_names(batch, capsys) -> None:
    """Run again in-process with the printed seed: the pixels repeat and no file is overwritten."""
    done, root, out, _ = batch
    seed = re.search(r"^seed (\d+)$", done.stdout, re.M)[1]
    first = {path.name: path.stat().st_mtime_ns for path, _ in written(done)}
    argv = ["generate", "--model", str(tiny_klein("distilled")), "--config", str(root / "request.yaml")]
    assert main([*argv, "--steps", "2", "--seed", seed, "--output-dir", str(out)]) == 0
    again = [
        Path(line.split()[1]) for line in capsys.readouterr().out.splitlines() if line.startswith("wrote")
    ]
    assert len(again) == 4 and not {p.name for p in again} & set(first)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in first} == first
    for (old, _), new in zip(written(done), again):
        # The subprocess ran at torch's default thread count, this process at one (tests/conftest.py):
        # float32 sums move by ~1e-6, one level of 255 at most (as tests/cli/test_flux2_cli.py measured).
        before, after = (np.asarray(Image.open(p), dtype=np.int16) for p in (old, new))
        assert np.abs(before - after).max() <= 1


def test_the_stages_add_up_to_the_wall_time(batch) -> None:
    done, _, _, external = batch
    line = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"time per stage: (.*); total ([\d.]+)s of ([\d.]+)s wall", line)
    assert match, line
    stages = {name: float(s) for name, s in re.findall(r"(\w+) ([\d.]+)s", match[1])}
    assert list(stages) == ["validate", "load", "encode_text", "encode_image", "prepare_latents", "denoise",
                            "decode", "write"]  # fmt: skip
    total, wall = float(match[2]), float(match[3])
    assert abs(sum(stages.values()) - total) < 0.05
    assert total >= 0.95 * wall, "time outside every stage"
    # Outside the printed wall: the interpreter's start and exit only (the imports are in the stages).
    assert wall >= 0.6 * external, (wall, external)
