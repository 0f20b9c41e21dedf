"""scripts/style_evidence.py's generation cache after a kill in the middle of an append:
the torn line is skipped with a KVS613 warning (it ended the rerun with a traceback), and
the next append starts on a fresh line instead of being swallowed by it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import load_script


def test_a_torn_line_is_skipped_with_a_warning_and_the_next_append_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = load_script("style_evidence")
    path = tmp_path / "generations.jsonl"
    first = evidence.GenerationCache(path)
    first.put("a", ["1. Step one."] * 3)
    whole = json.dumps({"key": "b", "texts": ["x" * 5000] * 4})
    with path.open("a", encoding="utf-8") as handle:  # a kill after part of a long line
        handle.write(whole[:7000])

    again = evidence.GenerationCache(path)
    assert again.get("a") == ["1. Step one."] * 3 and again.get("b") is None
    err = capsys.readouterr().err
    assert err.count("warning[KVS613]: line 2 of") == 1  # once, though `get` reloads
    again.put("c", ["answer"])
    lines = path.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[-1] == "" and lines[1] == whole[:7000]
    fresh = evidence.GenerationCache(path)
    assert fresh.get("a") is not None and fresh.get("c") == ["answer"]
