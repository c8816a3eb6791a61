"""`ditto generate --image` (and `--image-frames`) on the embedded tiny LTX-2 model, and the clear errors of bad
images and frames."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_ltx2_cli import run_ditto

from ditto.errors import InvalidParameter
from ditto.media.video import probe_mp4
from ditto.pipelines.ltx2.conditioning.image_frames import with_image_frames
from ditto.pipelines.ltx2.conditioning.image_input import image_conditions
from ditto.pipelines.ltx2.params import LTX2Params


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


def test_image_frames_place_each_image_at_its_frame(cache, picture, tmp_path) -> None:
    """`--image-frames` (the server's input_reference_frames) gives the frames apart from the paths."""
    output = tmp_path / "keyframes.mp4"
    args = ["generate", "--prompt", "x", "--output", str(output), "--image", picture, "--image", picture]
    completed = run_ditto([*args, "--image-frames", "0,8", *SMALL], cache)
    assert completed.returncode == 0, completed.stderr
    assert probe_mp4(output).frame_count == 9


def test_bad_image_frames_is_one_clear_line(cache, picture, tmp_path) -> None:
    args = ["generate", "--prompt", "x", "--output", str(tmp_path / "x.mp4"), "--image", picture]
    completed = run_ditto([*args, "--image", picture, "--input-reference-frames", "0,9", *SMALL], cache)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    expected = "image_frames='0,9' has frame 9, outside the video (0..8 for num_frames=9); use frames in 0..8"
    assert completed.stderr.strip().splitlines()[-1] == "error: " + expected


def resolved(image, image_frames, num_frames: int = 9) -> LTX2Params:
    params = LTX2Params(prompt="x", image=image, image_frames=image_frames, num_frames=num_frames)
    return with_image_frames(params.resolved("2.0", num_layers=2))


@pytest.mark.parametrize("frames", ["0, 8", [0, 8], (0, np.int64(8))])
def test_image_frames_pair_each_image_with_its_frame(frames) -> None:
    pixels = np.zeros((4, 4, 3), np.uint8)
    params = resolved([pixels, pixels + 9], frames)
    conditions = image_conditions(params.image, num_frames=9)
    assert [c.frame_index for c in conditions] == [0, 8] and conditions[1].pixels[0, 0, 0] == 9
    assert params.image_frames == "0,8"  # as the request record repeats it


@pytest.mark.parametrize(
    ("images", "frames", "message"),
    [
        (2, "0,x", "image_frames='0,x' is not a list of frame indices; give one frame index per image"),
        (2, [0, True], "image_frames=[0, True] is not a list of frame indices"),
        (2, "", "image_frames='' is not a list of frame indices"),
        (2, "0", "image_frames='0' names 1 frame for 2 images; give 2 frame indices, one per image"),
        (0, "0,8", "image_frames='0,8' names 2 frames for 0 images; give one image per frame"),
        (2, "0,9", "image_frames='0,9' has frame 9, outside the video (0..8 for num_frames=9); use frames in 0..8"),
        (2, "0,0", "image_frames='0,0' gives frame 0 more than once"),
        ("tuples", "0,8", "image_frames='0,8' is given for images that carry their own frame"),
    ],
)  # fmt: skip
def test_bad_image_frames_name_the_field_the_value_and_the_fix(images, frames, message: str) -> None:
    pixels = np.zeros((4, 4, 3), np.uint8)
    image = [(pixels, 0), (pixels, 8)] if images == "tuples" else [pixels] * images or None
    with pytest.raises(InvalidParameter) as caught:
        resolved(image, frames)
    assert caught.value.field == "image_frames" and str(caught.value).startswith(message)
