"""Shipped vectors: prebuilt artifacts that travel with their specs (the built-in styles').

A spec folder may hold `vectors/index.json` and the artifacts it lists; the built-in
specs do (`specs/vectors/`, in the wheel `kvsl/_builtin/specs/vectors/`), with vectors
for the embedded model, so the README's first `kvsl run` needs no extraction.
`scripts/build_shipped.py` writes them. The index maps a spec file name to its artifact:

    {"format": 1,
     "artifacts": {"step_by_step.kvs": {"file": "step-by-step.safetensors",
                                        "sha256": "<file bytes>", "vector_hash": "<plan's>",
                                        "style": "step-by-step", "model": "smollm2-135m"}}}

A shipped artifact is used only when all of these hold, so it is never used by mistake:
- its entry's `vector_hash` equals the plan's (content-addressed: any spec with the same
  inputs gets it, wherever it lies);
- the file's sha256 equals the index (a modified or truncated file is refused, KVS311);
- `load_artifact` verifies it (format, shapes, tensor checksum) and its manifest names
  the same vector hash.
A spec whose own entry has another vector hash (the spec's contrast or extraction
settings or its traces changed since the vectors were built) gets a KVS310 warning and is extracted as usual: stale
vectors are never used silently. Running the model checks the rest (`check_compatible`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvsl.base.hashing import file_sha256
from kvsl.base.jsonl import loads
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.plan import Plan
from kvsl.lang.source import Span

INDEX_FORMAT = 1
SHIPPED_DIR = "vectors"
INDEX_FILE = "index.json"


@dataclass(frozen=True)
class ShippedEntry:
    """One index entry: the spec file it belongs to and its artifact."""

    spec: str  # the spec's file name, e.g. "step_by_step.kvs"
    file: str  # the artifact's file name inside vectors/
    sha256: str
    vector_hash: str
    style: str = ""
    model: str = ""


def shipped_dir(spec_path: str | Path) -> Path:
    """The folder of a spec's shipped vectors: `vectors/` beside the spec.

    >>> shipped_dir("/x/specs/step_by_step.kvs")
    PosixPath('/x/specs/vectors')
    """
    return Path(spec_path).parent / SHIPPED_DIR


def read_index(folder: Path) -> dict[str, ShippedEntry]:
    """Spec file name → entry; {} when the folder has no readable index."""
    try:
        data = loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
        entries = data["artifacts"] if data.get("format") == INDEX_FORMAT else {}
        return {spec: ShippedEntry(spec=spec, **entry) for spec, entry in entries.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_index(folder: Path, entries: dict[str, ShippedEntry]) -> Path:
    """Write the index (sorted, stable) for `entries`; returns its path."""
    from kvsl.base.atomic import atomic_path

    data = {
        "format": INDEX_FORMAT,
        "artifacts": {
            spec: {
                "file": e.file,
                "sha256": e.sha256,
                "vector_hash": e.vector_hash,
                "style": e.style,
                "model": e.model,
            }
            for spec, e in sorted(entries.items())
        },
    }
    target = folder / INDEX_FILE
    with atomic_path(target) as temporary:
        Path(temporary).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
    return target


def _warning(code: str, message: str, plan: Plan, help: str) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, Span.whole_file(plan.spec_path), help=help)


def find_shipped(
    plan: Plan, on_warning: Callable[[Diagnostic], Any] | None = None
) -> Path | None:
    """The verified shipped artifact for `plan`, or None (see the module docstring).

    `on_warning` receives KVS310 (the spec's shipped vectors are stale) and KVS311 (a
    shipped file fails verification); either way the caller extracts instead.

    >>> find_shipped(load_plan("specs/step_by_step.kvs"))   # doctest: +SKIP
    PosixPath('/.../specs/vectors/step-by-step.safetensors')
    """
    folder = shipped_dir(plan.spec_path)
    index = read_index(folder)
    if not index:
        return None
    warn = on_warning or (lambda _d: None)
    for entry in index.values():
        if entry.vector_hash == plan.vector_hash:
            problem = _verify(folder / entry.file, entry)
            if problem is None:
                return folder / entry.file
            warn(
                _warning(
                    "KVS311",
                    f"shipped vectors `{entry.file}` fail verification ({problem}); "
                    "extracting instead",
                    plan,
                    "reinstall kvsl, or rebuild the shipped vectors with "
                    "`python scripts/build_shipped.py`",
                )
            )
            return None
    own = index.get(Path(plan.spec_path).name)
    if own is not None:
        warn(
            _warning(
                "KVS310",
                f"the shipped vectors of `{plan.style}` were built from another version of "
                "this spec (its contrast set, traces or extraction settings changed); "
                "extracting instead",
                plan,
                "the result is cached; to ship new vectors run `python scripts/build_shipped.py`",
            )
        )
    return None


def _verify(path: Path, entry: ShippedEntry) -> str | None:
    """None when `path` is the entry's artifact, intact; else what is wrong."""
    from kvsl.engine.artifact import load_artifact
    from kvsl.lang.diagnostics import KvslError

    try:
        if file_sha256(path) != entry.sha256:
            return "its sha256 differs from the index"
        vectors = load_artifact(path)
    except OSError as err:
        return err.strerror or str(err)
    except KvslError as err:
        return err.diagnostics[0].message
    if vectors.manifest.get("vector_hash") != entry.vector_hash:
        return "its manifest names another plan"
    return None
