"""Triton kernels on the CPU: a case script run under TRITON_INTERPRET=1 in a subprocess (the interpreter must be
chosen before Triton is imported, so not in the test process), its last stdout line read as a JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def interpreted_report(script: Path) -> dict[str, float]:
    """Run `script` with the interpreter on, the checkout's src/, the script's folder and the checkout on the
    path; fail with its output if it fails."""
    env = {
        **os.environ,
        "TRITON_INTERPRET": "1",
        "PYTHONPATH": os.pathsep.join([str(CHECKOUT / "src"), str(script.parent), str(CHECKOUT)]),
    }
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
