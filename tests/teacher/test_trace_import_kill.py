"""`kvsl traces import --out FILE` killed (SIGKILL) before each of its file operations in
the output's folder: the file is absent or the whole previous output, never a part of
the new one; a rerun writes it, and nothing of the killed runs is left beside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from killing import every_kill

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "tests" / "fixtures" / "traces" / "paper_format.jsonl"


def _import(out: Path, *more: str) -> list[str]:
    return ["-m", "kvsl", "traces", "import", str(PAPER), "--out", str(out), "--force", *more]


@pytest.mark.parametrize("previous", [True, False], ids=["over-a-previous-output", "new"])
def test_a_killed_import_leaves_the_previous_output_or_none(tmp_path: Path, previous: bool) -> None:
    whole = tmp_path / "whole" / "traces.jsonl"
    done = subprocess.run([sys.executable, *_import(whole)], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr
    new = whole.read_bytes()
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "traces.jsonl"
    old = b"".join(new.splitlines(keepends=True)[:2])  # a complete earlier import of two

    def reset() -> None:
        if previous:
            target.write_bytes(old)
        else:
            target.unlink(missing_ok=True)

    kills = 0
    for _ in every_kill(folder, _import(target), cwd=ROOT, before=reset):
        kills += 1
        kept = target.read_bytes() if target.exists() else None
        assert kept in ((old if previous else None), new), f"kill {kills} left {kept!r}"
    assert kills >= 3  # temporary created, written, flushed, renamed
    assert target.read_bytes() == new
    # The whole run removed the temporary files the killed ones left.
    assert [p.name for p in folder.iterdir()] == ["traces.jsonl"]
