"""Import one of the repository's scripts (scripts/*.py is not a package) by its path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """`scripts/<name>.py` as a fresh module named `name`."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import does: a script's dataclasses look their module up.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
