"""The layers of kvsl: which part may import which, read from the source with `ast`.

Each part of the `kvsl` package (a sub-package such as `kvsl/lang/`, or a top-level module
such as `kvsl/builtin.py`) has a row in `MAY_IMPORT`: the other parts it may import. Every
import counts, lazy ones inside functions and `TYPE_CHECKING` ones included, since each
is a dependency someone has to keep working. docs/architecture.md draws the same table.

A new part of the package must be given a row here first (`test_every_part_has_a_row`),
so the tree keeps saying who may import whom. The future wings already have theirs:
`kvsl/serve` (a steering server: the engine and the eval, like the CLI) and `kvsl/lsp`
(an editor server: the front end and the floor only, like `kvsl check`).
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kvsl"

_FLOOR = frozenset({"base"})
_FRONT = _FLOOR | {"styles", "lang"}
_SHARED = _FRONT | {"formats"}
_BACK = _SHARED | {"engine"}

# Each part, and the parts it may import besides itself. Read it bottom-up: the floor,
# the text-only style scorers, the front end, the data files the wings share, the torch
# back end, the public Python API and the built-in specs, the wings, the front doors.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "base": frozenset(),
    # The marker validator lives in kvsl.lang.markers: the checker reports what it refuses
    # and the style scorers (kvsl.styles) skip it, so styles reads lang, never the reverse.
    "lang": _FLOOR,
    "styles": _FLOOR | {"lang"},
    "formats": _FLOOR | {"lang"},
    "engine": _SHARED,
    "steering": _BACK,
    "builtin": _FRONT,
    "eval": _BACK,
    "teacher": _SHARED,
    # calibration (`kvsl tune`) searches over the eval's runs and the engine's builds
    "tune": _BACK | {"eval"},
    "cli": _BACK | {"steering", "builtin", "eval", "teacher", "tune", "serve", "lsp"},
    "serve": _BACK | {"steering", "builtin", "eval"},
    "lsp": _FRONT | {"builtin"},
    "__main__": frozenset({"cli"}),
}

# `kvsl/__init__.py` holds `__version__`, which every part may read, and makes
# `kvsl.steering` reachable as `kvsl.steer(...)` by a lazy `__getattr__`: that one lazy
# import is the root's only one.
ROOT = "kvsl"
ROOT_LAZY = frozenset({"kvsl.steering"})

# Libraries that make an import slow or pull in a GPU stack.
HEAVY = frozenset(
    {"torch", "transformers", "openai", "safetensors", "gguf", "accelerate", "scipy", "matplotlib"}
)
NO_HEAVY = frozenset({"styles", "lang", "formats", "builtin", "lsp"})
NO_TORCH = frozenset({"teacher"})  # the teacher talks HTTP (openai) and needs no model
TORCH = frozenset({"torch", "transformers", "safetensors", "gguf", "accelerate"})
FLOOR_THIRD_PARTY = frozenset({"rich"})  # base: the standard library and rich only


@dataclass(frozen=True)
class Import:
    """One import statement's target, as seen from `source` (a module name)."""

    source: str
    target: str  # "kvsl.lang.plan", or an outside module ("torch.nn")
    line: int
    lazy: bool  # inside a function


def part_of(module: str) -> str:
    """`kvsl.lang.check` → `lang`; `kvsl.builtin` → `builtin`; the root package → `kvsl`."""
    pieces = module.split(".")
    return ROOT if len(pieces) == 1 else pieces[1]


def module_name(path: Path) -> str:
    pieces = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(pieces[:-1] if pieces[-1] == "__init__" else pieces)


def _all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _all_modules()


def imports_in(source: str, module: str, is_package: bool, known: Iterable[str]) -> list[Import]:
    """Every import in `source` (the text of `module`), function-level ones included.

    `from kvsl import styles` names the module `kvsl.styles` when that is a module in
    `known`, else (`from kvsl import __version__`) the package itself.
    """
    known = set(known)
    found: list[Import] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.extend(Import(module, t, child.lineno, lazy) for t in targets(child))
            else:
                inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                visit(child, lazy or inner)

    visit(ast.parse(source), False)
    return found


@functools.cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        found.extend(imports_in(text, module, path.name == "__init__.py", MODULES))
    return tuple(found)


def layer_violations(imports: Iterable[Import], rules: dict[str, frozenset[str]]) -> list[str]:
    """Imports between parts of kvsl that `rules` does not allow, as readable lines."""
    problems: list[str] = []
    for found in imports:
        if found.target != ROOT and not found.target.startswith(ROOT + "."):
            continue
        source, target = part_of(found.source), part_of(found.target)
        if source == target or target == ROOT:
            continue
        if source == ROOT:
            allowed = found.lazy and found.target in ROOT_LAZY
        else:
            allowed = target in rules.get(source, frozenset())
        if not allowed:
            problems.append(
                f"{found.source}:{found.line} imports {found.target} ({source} → {target})"
            )
    return problems


def library_violations(imports: Iterable[Import]) -> list[str]:
    """Imports of outside libraries that a part's rules forbid."""
    problems: list[str] = []
    stdlib = sys.stdlib_module_names
    for found in imports:
        top = found.target.split(".")[0]
        if top == ROOT:
            continue
        part = part_of(found.source)
        refused = (
            (part in NO_HEAVY and top in HEAVY)
            or (part in NO_TORCH and top in TORCH)
            or (part in _FLOOR and top not in stdlib and top not in FLOOR_THIRD_PARTY)
        )
        if refused:
            problems.append(f"{found.source}:{found.line} imports {found.target} ({part})")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _kvsl_edges(imports: Iterable[Import]) -> Iterator[tuple[str, str]]:
    for found in imports:
        if found.source == ROOT and found.target in ROOT_LAZY:
            continue  # the root's lazy re-export (see ROOT_LAZY)
        if found.target in MODULES and found.target != found.source:
            yield found.source, found.target


# --------------------------------------------------------------------------- the tree


def test_every_part_has_a_row() -> None:
    parts = {part_of(m) for m in MODULES} - {ROOT}
    assert parts <= set(MAY_IMPORT), f"give {sorted(parts - set(MAY_IMPORT))} a row in MAY_IMPORT"


def test_imports_follow_the_layers() -> None:
    assert layer_violations(all_imports(), MAY_IMPORT) == []


def test_front_end_floor_and_teacher_import_no_heavy_library() -> None:
    assert library_violations(all_imports()) == []


def test_no_import_cycles_between_modules() -> None:
    # Lazy imports count: `codes.py` once imported the `codes_*.py` tables inside a
    # function run at import time, while they imported `codes.py`, a cycle that made
    # `import kvsl.lang.codes_eval` fail.
    graph: dict[str, set[str]] = {}
    for source, target in _kvsl_edges(all_imports()):
        graph.setdefault(source, set()).add(target)
    assert cycles(graph) == []


def test_no_import_cycles_between_parts() -> None:
    graph: dict[str, set[str]] = {}
    for source, target in _kvsl_edges(all_imports()):
        if part_of(source) != part_of(target) and ROOT not in (part_of(source), part_of(target)):
            graph.setdefault(part_of(source), set()).add(part_of(target))
    assert cycles(graph) == []


# --------------------------------------------------------------------------- the rules


def test_the_rules_themselves_have_no_cycle() -> None:
    graph = {part: set(allowed) for part, allowed in MAY_IMPORT.items()}
    assert cycles(graph) == []
    assert all(allowed <= set(MAY_IMPORT) for allowed in MAY_IMPORT.values())


def test_the_rules_say_what_the_house_rules_say() -> None:
    nothing_above_the_front_end = {"engine", "eval", "teacher", "cli", "serve", "lsp"}
    assert not MAY_IMPORT["lang"] & nothing_above_the_front_end
    assert MAY_IMPORT["base"] == frozenset()
    assert not MAY_IMPORT["engine"] & {"eval", "teacher", "cli", "builtin"}
    assert "teacher" not in MAY_IMPORT["eval"] and "eval" not in MAY_IMPORT["teacher"]
    assert not (MAY_IMPORT["eval"] | MAY_IMPORT["teacher"]) & {"cli", "serve", "lsp"}
    assert MAY_IMPORT["lsp"] == {"lang", "base", "styles", "builtin"}
    assert {"engine", "eval"} <= MAY_IMPORT["serve"] and "cli" not in MAY_IMPORT["serve"]
    assert all("serve" not in a and "lsp" not in a for p, a in MAY_IMPORT.items() if p != "cli")
    assert {"lang", "lsp"} <= NO_HEAVY and {"torch", "transformers", "openai"} <= HEAVY


# --------------------------------------------------------------------------- the checker


def _imports(module: str, source: str, *, package: bool = False) -> list[Import]:
    return imports_in(source, module, package, MODULES)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("kvsl.lsp.server", "from kvsl.engine.steer import steered\n"),
        ("kvsl.lsp.server", "def f():\n    from kvsl.eval import runner\n"),
        ("kvsl.teacher.prompts", "from kvsl.eval.datasets import Example\n"),
        ("kvsl.engine.build", "def f():\n    from kvsl.builtin import is_packaged\n"),
        ("kvsl.base.jsonl", "from kvsl.lang.diagnostics import KvslError\n"),
        ("kvsl.lang.check", "from kvsl import base, teacher\n"),
        ("kvsl.serve.app", "import kvsl.cli\n"),
        ("kvsl.eval.runner", "from ..teacher import run\n"),
        ("kvsl", "from kvsl import eval\n"),
    ],
)
def test_the_checker_refuses_a_wrong_import(module: str, source: str) -> None:
    assert len(layer_violations(_imports(module, source), MAY_IMPORT)) == 1


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("kvsl.lsp.server", "from kvsl.lang import check_paths\nfrom kvsl.base import atomic\n"),
        ("kvsl.serve.app", "from kvsl.eval import runner\nfrom kvsl.engine import steer\n"),
        (
            "kvsl.styles.markers",
            "from kvsl.lang.markers import validate_marker\nfrom kvsl import __version__\n",
        ),
        ("kvsl.teacher.run", "from kvsl.formats.questions import Example\n"),
    ],
)
def test_the_checker_accepts_a_right_import(module: str, source: str) -> None:
    assert layer_violations(_imports(module, source), MAY_IMPORT) == []


def test_the_checker_refuses_heavy_libraries_where_they_do_not_belong() -> None:
    wrong = [
        ("kvsl.lang.plan", "import torch\n"),
        ("kvsl.lsp.server", "def f():\n    from transformers import AutoModel\n"),
        ("kvsl.teacher.client", "import torch.nn\n"),
        ("kvsl.base.cache", "import numpy\n"),
    ]
    for module, source in wrong:
        assert len(library_violations(_imports(module, source))) == 1, module
    right = [("kvsl.teacher.client", "import openai\n"), ("kvsl.base.progress", "import rich\n")]
    for module, source in right:
        assert library_violations(_imports(module, source)) == [], module


def test_the_cycle_finder_finds_a_lazy_cycle() -> None:
    # The shape of the old codes.py <-> codes_eval.py cycle.
    edges = [
        *_imports("kvsl.lang.codes", "def _load():\n    from kvsl.lang.codes_eval import E\n"),
        *_imports("kvsl.lang.codes_eval", "from kvsl.lang.codes import Code\n"),
    ]
    graph: dict[str, set[str]] = {}
    for found in edges:
        graph.setdefault(found.source, set()).add(found.target)
    assert cycles(graph) == [["kvsl.lang.codes", "kvsl.lang.codes_eval"]]
