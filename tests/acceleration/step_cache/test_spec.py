"""The one cache spec string: presets, keys and their ranges, clear errors, and ditto's step-mask rule."""

from __future__ import annotations

import pytest

from ditto.acceleration.step_cache import parse_cache_spec
from ditto.acceleration.step_cache.masks import parse_step_list, preset_steps
from ditto.errors import InvalidParameter


def test_no_cache_spellings() -> None:
    for text in (None, "", "none", "OFF", " none "):
        assert parse_cache_spec(text) is None


def test_dbcache_defaults_are_the_serving_defaults_and_keys_override_them() -> None:
    spec = parse_cache_spec("dbcache")
    assert (spec.method, spec.fn, spec.bn, spec.threshold, spec.warmup, spec.max_cached) == (
        "dbcache", 1, 0, 0.24, 4, 3,
    )  # fmt: skip
    spec = parse_cache_spec(
        "dbcache:Fn=2,bn=1,threshold=0.1,audio_threshold=0.3,warmup=6,MAX_CACHED=-1,taylorseer=2"
    )
    assert (spec.fn, spec.bn, spec.thresholds, spec.warmup, spec.max_cached, spec.taylorseer) == (
        2, 1, (0.1, 0.3), 6, -1, 2,
    )  # fmt: skip
    assert parse_cache_spec("dbcache:threshold=0.2").thresholds == (0.2, 0.2)  # audio follows the video


def test_presets_are_static_masks_that_take_overrides() -> None:
    spec = parse_cache_spec("fast")
    assert (spec.method, spec.preset, spec.fn, spec.bn) == ("mask", "fast", 0, 0)
    spec = parse_cache_spec("ultra:Fn=1,taylorseer=1")
    assert (spec.preset, spec.fn, spec.taylorseer) == ("ultra", 1, 1)
    assert parse_cache_spec("mask:preset=slow").computed_steps(28) == preset_steps("slow", 28)
    assert parse_cache_spec("mask:compute=0-3+7").computed_steps(10) == {0, 1, 2, 3, 7}
    assert parse_cache_spec("mask:compute=all").computed_steps(5) == set(range(5))
    assert parse_cache_spec("dbcache").computed_steps(5) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "dbcache:Fm=1",
            "has an unknown key 'Fm'; dbcache keys: Fn \\(int >= 1\\), Bn \\(int >= 0\\), threshold",
        ),
        ("dbcache:Fn=0", "has Fn='0' out of range; dbcache keys: Fn \\(int >= 1\\)"),
        (
            "dbcache:taylorseer=3",
            "has taylorseer='3' out of range; dbcache keys: .* taylorseer \\(int 0..2\\)",
        ),
        ("dbcache:threshold=-0.1", "threshold='-0.1' out of range"),
        ("dbcache:warmup=two", "warmup='two' out of range"),
        ("dbcache:Fn", "gives 'Fn' no value"),
        ("mask", "names no steps to compute; give preset=NAME or compute=STEPS"),
        (
            "mask:compute=3-1",
            "compute='3-1', not a step list; mask keys: preset \\(slow | medium | fast | ultra\\)",
        ),
        ("fast:compute=0-3", "gives both a preset and compute="),
        ("mask:preset=warp", "has preset='warp'"),
        (
            "teacache",
            "names no cache method \\('teacache'\\); use none, a preset \\(slow, medium, fast, ultra\\)",
        ),
    ],
)
def test_a_bad_spec_names_the_key_and_the_valid_ones(text: str, says: str) -> None:
    with pytest.raises(InvalidParameter, match=says) as raised:
        parse_cache_spec(text)
    assert raised.value.field == "cache" and raised.value.value == text


def test_a_spec_must_be_text() -> None:
    with pytest.raises(InvalidParameter, match="cache=3 is not a string"):
        parse_cache_spec(3)


def test_step_lists() -> None:
    assert parse_step_list("0-2+5+4") == (0, 1, 2, 4, 5)
    assert parse_step_list("all") == ()
    for bad in ("", "a", "1-", "-1", "2-1", "1,2"):
        assert parse_step_list(bad) is None, bad


def test_presets_compute_their_share_at_28_steps_and_stretch_in_time() -> None:
    """At 28 steps the presets are Cache-DiT's (18/15/11/8 computed); at other counts ditto stretches the
    runs in time (masks.py), where Cache-DiT has rules of its own: these counts pin ditto's."""
    counts = {
        n: [len(preset_steps(p, n)) for p in ("slow", "medium", "fast", "ultra")] for n in (20, 28, 40, 50)
    }
    assert counts == {20: [14, 10, 8, 5], 28: [18, 15, 11, 8], 40: [24, 22, 15, 12], 50: [32, 28, 18, 15]}
    fast = preset_steps("fast", 28)
    assert "".join("1" if i in fast else "0" for i in range(28)) == "1111110100010000100000100001"
    for n in (4, 8, 40):  # the first and the last step always compute
        assert {0, n - 1} <= preset_steps("ultra", n)
