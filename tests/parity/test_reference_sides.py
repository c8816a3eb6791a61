"""A reference side must come from the reference packages (diffusers, ltx-core / ltx-pipelines), never from
ditto: a reference helper of the parity suite that imports ditto, even through another local module, even
inside a function, would compare ditto with itself."""

from __future__ import annotations

import ast
from pathlib import Path

PARITY = Path(__file__).resolve().parent
LOCAL = (PARITY, PARITY.parent)  # tests/parity/X.py and tests/helpers/X.py (imported as helpers.X)


def reference_helpers() -> list[Path]:
    """The modules that compute a reference side: *_reference.py, the official recipes and shims."""
    names = {*PARITY.glob("*_reference.py"), *PARITY.glob("*_official.py"), PARITY / "official_shims.py"}
    return sorted(path for path in names if not path.name.startswith("test_"))


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def local_file(module: str) -> Path | None:
    for root in LOCAL:
        path = root.joinpath(*module.split(".")).with_suffix(".py")
        if path.is_file():
            return path
    return None


def shown(path: Path) -> str:
    return str(path.relative_to(PARITY.parent)) if path.is_relative_to(PARITY.parent) else path.name


def ditto_imports(path: Path, seen: set[Path]) -> list[str]:
    """'module: ditto.x' for every ditto import reachable from `path` through local modules."""
    if path in seen:
        return []
    seen.add(path)
    found = []
    for module in sorted(imported_modules(path)):
        if module == "ditto" or module.startswith("ditto."):
            found.append(f"{shown(path)}: {module}")
        elif (local := local_file(module)) is not None:
            found.extend(ditto_imports(local, seen))
    return found


def test_the_reference_helpers_are_found() -> None:
    names = {path.name for path in reference_helpers()}
    assert {"ltx_official_reference.py", "ltx2_stages_official.py", "ltx2_stages_reference.py"} <= names
    assert {"ltx2_reference.py", "ltx2_i2v_reference.py", "official_shims.py"} <= names


def test_no_reference_helper_imports_ditto() -> None:
    found = [line for path in reference_helpers() for line in ditto_imports(path, set())]
    assert not found, "reference helpers import ditto:\n" + "\n".join(found)


def test_the_check_sees_an_import_inside_a_function_and_through_a_local_module(tmp_path) -> None:
    """The check itself can fail: a function-level import, and one reached through tests/helpers."""
    helper = tmp_path / "fake_reference.py"
    helper.write_text("def run():\n    from ditto.sampling.schedules import ltx2_sigmas\n")
    assert ditto_imports(helper, set()) == ["fake_reference.py: ditto.sampling.schedules"]
    via = tmp_path / "via_reference.py"
    via.write_text("from helpers.ltx2 import tiny_ltx2\n")
    assert "helpers/ltx2.py: ditto.tiny.ltx2" in ditto_imports(via, set())
