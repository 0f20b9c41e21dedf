"""The editor files: the Vim syntax scopes sample lines in a real (headless) Vim, and the
VS Code client parses under Node. Each test is skipped where its program is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from lsp_support import ROOT

SAMPLE = """# comment
style "step-by-step" {
  steer {
    layers = [1..]
    at [1..4] { value = -4.5e0 }
  }
  contrast { select = random  # why
    offset_token = "\\n"
    template = \"\"\"{{ q }}\"\"\"
    x = "# not"
  }
}
"""
# (line, column) → the syntax group there (1-based, as Vim counts)
EXPECTED = {
    (1, 3): "kvsComment",
    (2, 1): "kvsBlock",
    (2, 9): "kvsString",
    (3, 3): "kvsBlock",
    (4, 5): "kvsKey",
    (4, 16): "kvsRange",
    (5, 5): "kvsBlock",
    (5, 25): "kvsNumber",
    (7, 25): "kvsConstant",
    (7, 34): "kvsComment",
    (8, 21): "kvsEscape",
    (9, 17): "kvsLongString",
    (10, 10): "kvsString",
}


@pytest.mark.skipif(shutil.which("vim") is None, reason="needs vim")
def test_vim_syntax_scopes_sample_lines(tmp_path: Path) -> None:
    sample = tmp_path / "sample.kvs"
    sample.write_text(SAMPLE, encoding="utf-8")
    out = tmp_path / "groups.json"
    probe = tmp_path / "probe.vim"
    positions = json.dumps([list(p) for p in EXPECTED])
    probe.write_text(
        f"let out = {{}}\nfor [l, c] in {positions}\n"
        "  let out[l . ':' . c] = synIDattr(synID(l, c, 1), 'name')\nendfor\n"
        f"call writefile([json_encode(out)], '{out}')\nqa!\n",
        encoding="utf-8",
    )
    command = [
        "vim", "-Nu", "NONE", "-i", "NONE", "-es",
        "-c", f"set rtp^={ROOT / 'editors' / 'vim'}",
        "-c", "filetype on", "-c", "syntax on",
        "-c", f"edit {sample}", "-c", f"source {probe}",
    ]  # fmt: skip
    subprocess.run(command, timeout=60, check=False, capture_output=True)
    found = json.loads(out.read_text(encoding="utf-8"))
    assert {tuple(map(int, k.split(":"))): v for k, v in found.items()} == EXPECTED


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_vscode_client_parses() -> None:
    extension = ROOT / "editors" / "vscode" / "extension.js"
    result = subprocess.run(["node", "--check", str(extension)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    package = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text(encoding="utf-8"))
    assert package["main"] == "./extension.js"
    assert "vscode-languageclient" in package["dependencies"]
    commands = {c["command"] for c in package["contributes"]["commands"]}
    assert commands == {"kvsl.showExplanation"}
