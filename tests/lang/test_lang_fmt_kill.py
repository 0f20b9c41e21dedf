"""`kvsl fmt` and `kvsl check` stopped mid-run by SIGKILL, SIGTERM or Ctrl-C (SIGINT), at
chosen file operations (tests/support/killing.py), so every moment between two is hit.

`kvsl fmt FOLDER` rewrites each spec atomically: after any stop, each file is its old
text or its formatted text, never a part of it; the rerun formats the rest, ends where an
uninterrupted run ends and leaves nothing of the stopped runs beside the specs. Ctrl-C
ends either command with exit 130 and `interrupted`, never a Python traceback
(`kvsl check` runs without Typer, which used to let KeyboardInterrupt through).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from killing import every_kill, killed_before_operation

ROOT = Path(__file__).resolve().parents[2]
SPECS = 2
MESSY = 'style "s{i}" {{description="d"  contrast {{pairs=4 shots=1}}}}\n'


def _messy(folder: Path) -> dict[Path, bytes]:
    folder.mkdir(exist_ok=True)
    files = {folder / f"s{i}.kvs": MESSY.format(i=i).encode() for i in range(SPECS)}
    for path, data in files.items():
        path.write_bytes(data)
    return files


def _formatted(tmp_path: Path) -> dict[str, bytes]:
    """The specs after an uninterrupted `kvsl fmt`, by file name."""
    whole = tmp_path / "whole"
    _messy(whole)
    done = subprocess.run([sys.executable, "-m", "kvsl", "fmt", str(whole)], cwd=ROOT,
                          capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {p.name: p.read_bytes() for p in whole.iterdir()}


def test_fmt_killed_before_each_file_operation_leaves_old_or_new_specs(tmp_path: Path) -> None:
    new = _formatted(tmp_path)
    folder = tmp_path / "specs"
    old = _messy(folder)
    args = ["-m", "kvsl", "fmt", str(folder)]
    kills = 0
    # the moments that differ on disk: a temporary written but not yet renamed (before its
    # chmod), and each rename (every other operation only reads or fills the temporary)
    moments = ("os.chmod", "os.rename")
    for _ in every_kill(folder, args, cwd=ROOT, before=lambda: _messy(folder), events=moments):
        kills += 1
        for path, data in old.items():
            assert path.read_bytes() in (data, new[path.name]), f"kill {kills}: {path.name}"
    assert kills == 2 * SPECS
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == new  # no stray temporaries


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_fmt_stopped_halfway_then_rerun_ends_as_if_never_stopped(tmp_path: Path, sig: str) -> None:
    new = _formatted(tmp_path)
    folder = tmp_path / "specs"
    _messy(folder)
    args = ["-m", "kvsl", "fmt", str(folder)]
    # before the second rename: the first spec is rewritten, the second one's temporary
    # written but not in place
    stopped = killed_before_operation(2, folder, args, cwd=ROOT, sig=sig, events=("os.rename",))
    assert stopped.returncode == (130 if sig == "SIGINT" else -15), stopped.stderr
    assert b"Traceback" not in stopped.stderr
    changed = sorted(p.name for p in folder.glob("*.kvs") if p.read_bytes() == new[p.name])
    assert changed == ["s0.kvs"]
    rerun = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == new


def test_ctrl_c_during_check_exits_130_without_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    _messy(folder)
    args = ["-m", "kvsl", "check", str(folder)]
    stopped = killed_before_operation(2, folder, args, cwd=ROOT, sig="SIGINT")
    assert stopped.returncode == 130, stopped.stderr
    assert b"Traceback" not in stopped.stderr and stopped.stderr.strip().endswith(b"interrupted")
