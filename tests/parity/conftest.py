"""Parity-suite set-up: the shims the official LTX packages need here, and the tiny official-layout
checkpoints of the official-code tests."""

from __future__ import annotations

from pathlib import Path

import official_shims
import pytest

# Before any test module imports ltx_pipelines (which imports torchaudio, absent here, at import).
official_shims.install()


@pytest.fixture(scope="session")
def official_checkpoints(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    from ditto.tiny.ltx_official import build_tiny_official

    folder = tmp_path_factory.mktemp("ltx-official")
    return {version: build_tiny_official(folder, version) for version in ("2.0", "2.3")}
