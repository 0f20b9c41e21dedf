"""The house rules of issue 11, held by a test: rooms small enough to hold in one's head.

No module of the package over about 600 lines (tables of diagnostic codes excepted: one
entry per code is one concept), and no function over 80 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kvsl"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
TABLES = {"lang/codes_frontend.py"}  # the registry of front-end diagnostic codes


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_the_package_is_found():
    assert len(MODULES) > 50


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_module_is_too_big(path: Path):
    if _relative(path) in TABLES:
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_relative(path)} has {lines} lines: split it by concept"


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_function_is_too_long(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_relative(path)}: {', '.join(long)}: break into named steps"
