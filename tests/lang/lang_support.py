"""Shared helpers for the front-end tests (a plain module: test packages have no __init__)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
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


def check_in_a_fresh_process(
    target: str, *, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run `kvsl check TARGET` through `main()` in a new interpreter; the last line of its
    stdout reads `HEAVY [<heavy modules it imported>] <exit code>` (`kvsl check` must
    import none)."""
    script = (
        "import sys\n"
        f"sys.argv = ['kvsl', 'check', {target!r}]\n"
        "from kvsl.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'openai', 'typer', 'pydantic', 'rich', 'lark')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy, code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}, check=False, timeout=120,
    )
