"""`scripts/setup.sh`, the README's install command, refuses a Python older than 3.11
before it makes `.venv` (pip would fail later, on `requires-python`, after installing torch).

Run on a copy of the script in a scratch folder with a fake interpreter: nothing is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def run_setup(tmp_path: Path, python: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    return subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup.sh")],
        env={"PATH": "/usr/bin:/bin", "PYTHON": python},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_an_old_python_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text(
        '#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.10.12"; exit 0; }\n'
        "exec python3 -c 'import sys; sys.exit(1)'\n"
    )
    old.chmod(0o755)
    result = run_setup(tmp_path, str(old))
    assert result.returncode == 3, result.stderr
    assert "kvsl needs Python >= 3.11" in result.stderr and "Python 3.10.12" in result.stderr
    assert not (tmp_path / ".venv").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_a_missing_python_is_named(tmp_path: Path) -> None:
    result = run_setup(tmp_path, str(tmp_path / "no-such-python"))
    assert result.returncode == 3
    assert "is not found" in result.stderr and not (tmp_path / ".venv").exists()
