"""`ditto generate --pipeline hq | keyframe-interpolation | ic-lora | retake | audio-to-video` on a tiny LTX-2
folder (with its upsampler and distilled LoRA, and a tiny IC-LoRA): each writes an MP4 with video and sound;
bad inputs are one `error:` line naming the field and a valid value."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ditto.cli import main
from ditto.media.video import probe_mp4, write_mp4

SMALL = ["--width", "128", "--height", "128", "--num-frames", "9", "--seed", "3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from ditto.tiny.ltx2 import build_tiny, build_tiny_ic_lora

    root = tmp_path_factory.mktemp("pipelines")
    build_tiny(root / "ltx", "2.0", with_upsampler=True, with_distilled_lora=True)
    build_tiny_ic_lora(root / "ic.safetensors")
    rng = np.random.default_rng(0)
    frames = rng.random((9, 128, 128, 3)).astype(np.float32)
    time = np.arange(int(44100 * 0.5)) / 44100
    sound = (0.3 * np.stack([np.sin(2 * np.pi * 440 * time)] * 2)).astype(np.float32)
    write_mp4(root / "source.mp4", frames, 24.0, sound, 44100)
    write_mp4(root / "control.mp4", frames[:, :64, :64], 24.0)
    Image.fromarray((frames[0] * 255).astype(np.uint8)).save(root / "a.png")
    Image.fromarray((frames[-1] * 255).astype(np.uint8)).save(root / "b.png")
    return {
        name: root / name for name in ("ltx", "ic.safetensors", "source.mp4", "control.mp4", "a.png", "b.png")
    }


def cases(files: dict[str, Path]) -> dict[str, list[str]]:
    return {
        "hq": [*SMALL, "--steps", "2"],
        "keyframe-interpolation": [*SMALL, "--steps", "2", "--image", f"{files['a.png']}:0",
                                   "--image", f"{files['b.png']}:8"],
        "ic-lora": [*SMALL, "--ic-lora", str(files["ic.safetensors"]), "--reference-video", str(files["control.mp4"])],
        "retake": ["--video", str(files["source.mp4"]), "--start-time", "0.1", "--end-time", "0.3", "--steps", "2",
                   "--regenerate", "both"],
        "audio-to-video": [*SMALL, "--steps", "2", "--audio", str(files["source.mp4"])],
    }  # fmt: skip


@pytest.mark.parametrize("pipeline", ["hq", "keyframe-interpolation", "ic-lora", "retake", "audio-to-video"])
def test_each_pipeline_writes_an_mp4_with_sound(files, tmp_path, capsys, pipeline: str) -> None:
    output = tmp_path / f"{pipeline}.mp4"
    args = ["generate", "--model", str(files["ltx"]), "--prompt", "x", "--output", str(output)]
    assert main([*args, "--pipeline", pipeline, *cases(files)[pipeline]]) == 0, capsys.readouterr().err
    info = probe_mp4(output)
    assert (info.frame_count, info.width, info.height) == (9, 128, 128)
    assert info.audio_codec == "aac" and info.audio_channels == 2 and info.audio_duration > 0.3


@pytest.mark.parametrize(
    ("pipeline", "extra", "message"),
    [
        ("retake", ["--video", "{source}", "--start-time", "0.2", "--end-time", "9"],
         "end_time=9.0 is not a time inside the source (0..0.375 s); give seconds in 0..0.375"),
        ("retake", ["--video", "{source}", "--start-time", "0.3", "--end-time", "0.1"],
         "end_time=0.1 is not after start_time=0.3; e.g. end_time=0.375"),
        ("audio-to-video", [*SMALL, "--audio", "{source}", "--num-frames", "17"],
         "audio='0.5* s from 0 s' is shorter than the video (0.708 s); give longer audio, an earlier "
         "audio_start_time, or fewer num_frames"),
        ("ic-lora", [*SMALL, "--reference-video", "{control}"],
         "pipeline='ic-lora' needs an IC-LoRA; load one: ic_lora=PATH[:SCALE] (--ic-lora PATH)"),
        ("keyframe-interpolation", [*SMALL, "--image", "{a}:9"],
         "image=9 is a frame index outside the video (0..8 for num_frames=9); use a frame in 0..8"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_field(files, tmp_path, capsys, pipeline, extra, message) -> None:
    names = {"source": files["source.mp4"], "control": files["control.mp4"], "a": files["a.png"]}
    extra = [value.format(**names) for value in extra]
    args = ["generate", "--model", str(files["ltx"]), "--prompt", "x", "--output", str(tmp_path / "x.mp4")]
    assert main([*args, "--pipeline", pipeline, *extra]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    pattern = re.escape("error: " + message).replace(r"\*", r"\d*")  # "*": digits the AAC encoder decides
    assert re.fullmatch(pattern, line), line
