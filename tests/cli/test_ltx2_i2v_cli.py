"""`ditto generate --image` on the embedded tiny LTX-2 model, and the clear errors of bad images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_ltx2_cli import run_ditto

from ditto.errors import InvalidParameter
from ditto.media.video import probe_mp4
from ditto.pipelines.ltx2.conditioning.image_input import image_conditions


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("img") / "first.png"
    Image.new("RGB", (120, 80), (200, 60, 30)).save(path)
    return str(path)


SMALL = ["--width", "96", "--height", "64", "--num-frames", "9", "--steps", "2", "--seed", "3"]


def test_image_and_keyframe_give_an_mp4(cache, picture, tmp_path) -> None:
    output = tmp_path / "i2v.mp4"
    args = ["generate", "--prompt", "x", "--output", str(output), "--image", picture]
    completed = run_ditto([*args, "--image", f"{picture}:8", *SMALL], cache)
    assert completed.returncode == 0, completed.stderr
    info = probe_mp4(output)
    assert (info.frame_count, info.width, info.height) == (9, 96, 64)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("missing.png", "image='{tmp}/missing.png' does not exist; give the path of a PNG or JPEG file"),
        (
            "{picture}:9",
            "image=9 is a frame index outside the video (0..8 for num_frames=9); use a frame in 0..8",
        ),
    ],
)
def test_bad_image_is_one_clear_line(cache, picture, tmp_path, image: str, message: str) -> None:
    image = image.format(picture=picture).replace("missing.png", str(tmp_path / "missing.png"))
    completed = run_ditto(
        ["generate", "--prompt", "x", "--output", str(tmp_path / "x.mp4"), "--image", image, *SMALL], cache
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == "error: " + message.format(tmp=tmp_path)


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (42, "is not an image type ditto reads"),
        (np.zeros((4, 4, 2), np.uint8), "is not H x W, H x W x 3 or H x W x 4"),
        (np.full((4, 4, 3), 1.5, np.float32), "has values outside [0, 1]"),
        ((np.zeros((4, 4, 3), np.uint8), -1), "is a frame index outside the video"),
        ((np.zeros((4, 4, 3), np.uint8), 2.0), "has a frame index that is not an integer"),
        ((np.zeros((4, 4, 3), np.uint8), 4, 1.5), "has a strength outside [0, 1]"),
        ([np.zeros((4, 4, 3), np.uint8)] * 2, "gives frame 0 more than once"),
    ],
)
def test_wrong_values_name_the_field(image, problem: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        image_conditions(image, num_frames=9)
    assert caught.value.field == "image" and problem in str(caught.value)


def test_a_file_that_is_not_an_image(tmp_path) -> None:
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InvalidParameter, match="is not a readable image"):
        image_conditions(str(tmp_path / "junk.png"), num_frames=9)


def test_accepted_forms() -> None:
    pixels = np.zeros((6, 8, 4), np.uint8)
    one = image_conditions(pixels, 9)
    assert len(one) == 1 and one[0].pixels.shape == (6, 8, 3) and one[0].frame_index == 0
    both = image_conditions([Image.new("RGB", (8, 6)), (np.zeros((6, 8)), 8, 0.5)], 9)
    assert [(c.frame_index, c.strength) for c in both] == [(0, 1.0), (8, 0.5)]
    assert image_conditions(np.ones((2, 2, 3), np.float32), 9)[0].pixels.max() == 255
