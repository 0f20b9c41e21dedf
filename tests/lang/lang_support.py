"""Shared helpers for the front-end tests (a plain module: test packages have no __init__)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.kvs"))
FIXTURES = ROOT / "tests" / "fixtures" / "diagnostics"
FIXTURE_SPECS = sorted(p for p in FIXTURES.rglob("*.kvs") if p.is_file())

TRACE = '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}\n'

VALID = """style "tiny" {
  description = "A tiny style."
  contrast {
    traces = "traces.jsonl"
    pairs = 4
    shots = 1
  }
}
"""


def regen_module() -> ModuleType:
    """tests/regen_golden.py, imported by path (tests/ is not a package)."""
    name = "kvsl_regen_golden"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "regen_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_spec(directory: Path, text: str = VALID, name: str = "tiny.kvs") -> Path:
    """A spec file with a trace file next to it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "traces.jsonl").write_text(TRACE * 5, encoding="utf-8")
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path
