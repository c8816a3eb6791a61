"""The README's server section: its tables are the ones the code generates, and every curl and `openai`
example in it runs, in order, against tiny-flux2-klein and tiny-ltx2 servers on loopback."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from ditto.engine import Engine
from ditto.server import create_app
from ditto.server.limits import limits_table
from ditto.server.schemas import family_table

from .helpers import thread_server

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://localhost:30010"
BLOCK = re.compile(r"```(bash|python)\n# (image|video) model\n(.*?)```", re.S)


def server_section() -> str:
    text = README.read_text()
    start = text.index("## HTTP server")
    return text[start : text.index("\n## ", start + 1)]


def test_the_tables_are_generated_from_the_code():
    section = server_section()
    assert family_table() in section, "paste into README.md's server section:\n" + family_table()
    assert limits_table() in section, "paste into README.md's server section:\n" + limits_table()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    engines = {
        "image": Engine.from_pretrained("tiny-flux2-klein", device="cpu", dtype="float32"),
        "video": Engine.from_pretrained("tiny-ltx2", device="cpu", dtype="float32"),
    }
    apps = {kind: create_app(engine, tmp_path_factory.mktemp(kind)) for kind, engine in engines.items()}
    with thread_server(apps["image"]) as image_url, thread_server(apps["video"]) as video_url:
        yield {
            "image": image_url.replace("127.0.0.1", "localhost"),
            "video": video_url.replace("127.0.0.1", "localhost"),
        }


def failing_curl(folder: Path) -> dict[str, str]:
    """PATH with a `curl` that exits non-zero on an HTTP error, so `bash -e` stops at a failing example."""
    shim = folder / "bin" / "curl"
    shim.parent.mkdir()
    shim.write_text('#!/bin/sh\nexec /usr/bin/curl --fail-with-body "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}


def run_bash(code: str, env: dict[str, str], cwd: Path) -> None:
    names = re.findall(r"^(\w+)=", code, re.M)  # variables later blocks use, kept in vars.sh
    save = "".join(f'echo "{name}=${name}" >> vars.sh\n' for name in names)
    script = f"set -e\n[ -f vars.sh ] && . ./vars.sh\n{code}\n{save}"
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (
        f"README example failed:\n{code}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )


def test_every_example_runs(servers, tmp_path, monkeypatch):
    env = failing_curl(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespaces: dict[str, dict] = {"image": {}, "video": {}}
    blocks = BLOCK.findall(server_section())
    assert {(language, kind) for language, kind, _ in blocks} == {
        ("bash", "image"), ("python", "image"), ("bash", "video"), ("python", "video")
    }  # fmt: skip
    for language, kind, code in blocks:
        code = code.replace(README_URL, servers[kind])
        if language == "bash":
            run_bash(code, env, tmp_path)
        else:
            exec(compile(code, f"README.md ({kind} example)", "exec"), namespaces[kind])  # noqa: S102
    assert (tmp_path / "cat.png").stat().st_size > 0 and (tmp_path / "fox.mp4").stat().st_size > 0
    assert namespaces["video"]["video"].size == "1280x704"
