"""`ditto serve`'s flags and --config file -> ServerSettings (no process, no model)."""

from __future__ import annotations

import argparse

import pytest

from ditto.errors import DittoError
from ditto.server import cli as serve_cli
from ditto.server.limits import Limits


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve_cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_flags_override_the_config_file_and_the_family_defaults(tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text(
        "max_steps: 30\nmax-images: 2\nretention_hours: 1\napi_key: [sk-a]\nstrict_size: true\n"
    )
    args = parse("--config", str(config), "--max-steps", "12", "--max-upload-mb", "2")
    serve_cli.apply_config(args)
    settings = serve_cli.build_settings(args, "flux2-klein")
    limits = settings.limits
    assert (limits.max_steps, limits.max_images, limits.uploads["image"].max_bytes) == (12, 2, 2 << 20)
    assert limits.max_pixels == Limits.for_family("flux2-klein").max_pixels  # the family's default
    assert settings.retention.max_age_s == 3600 and settings.strict_size
    assert settings.access.keys == ("sk-a",)


def test_bad_config_and_hosts_are_one_clear_error(tmp_path):
    config = tmp_path / "serve.json"
    config.write_text('{"max_stepz": 3}')
    with pytest.raises(DittoError, match="'max_stepz' is not a flag of ditto serve"):
        serve_cli.apply_config(parse("--config", str(config)))
    with pytest.raises(DittoError, match="loopback only"):
        serve_cli.build_settings(parse("--host", "0.0.0.0"))
    assert serve_cli.build_settings(parse("--host", "0.0.0.0", "--api-key", "k")).access.keys == ("k",)
    assert (
        serve_cli.is_loopback("127.0.0.2")
        and serve_cli.is_loopback("::1")
        and not serve_cli.is_loopback("10.0.0.1")
    )
