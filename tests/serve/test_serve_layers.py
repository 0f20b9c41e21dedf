"""The server wing sits on the engine and the front end, never on the CLI (read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import kvsl

SERVE = Path(kvsl.__file__).parent / "serve"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_kvsl_serve_never_imports_the_cli():
    files = sorted(SERVE.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        assert not any(n == "kvsl.cli" or n.startswith("kvsl.cli.") for n in _imports(path)), path


def test_the_cli_command_imports_the_server_lazily():
    source = Path(kvsl.__file__).parent / "cli" / "serve_commands.py"
    top = {n for node in ast.parse(source.read_text()).body if isinstance(node, ast.ImportFrom)
           for n in [node.module or ""]}
    assert not any(n.startswith("kvsl.serve") or n.startswith("kvsl.engine") for n in top)
