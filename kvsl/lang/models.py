"""Which model a name means: the one rule, for a spec's `model =` and a `--model` flag.

`model_ref(name, directory)` classifies what a user wrote, without loading anything:

- an embedded short name (`smollm2-135m`) is `embedded`;
- a name ending in `.gguf` (any case) is a `gguf` file;
- a name that starts like a path (`./`, `../`, `/`, `~`) or names an existing folder is
  a `directory`;
- anything else is a Hugging Face `hub` id.

Paths are relative to `directory`: the spec's folder for `model =`, the working
directory for a command-line `--model` (`kvsl.engine.models.resolve_ref`). The checker
also knows the layer count of each embedded model, to check layer indices without
loading it, and reports model paths that do not exist (KVS120) and near misses of an
embedded name (KVS121).

>>> model_ref("smollm2-135m", "/specs")
ModelRef(name='smollm2-135m', kind='embedded', location='smollm2-135m')
>>> model_kind("Qwen/Qwen2.5-0.5B-Instruct", "/nonexistent")
('hub', 'Qwen/Qwen2.5-0.5B-Instruct')
>>> model_kind("../models/m.gguf", "/specs")
('gguf', '/models/m.gguf')
"""

from __future__ import annotations

import os
from difflib import get_close_matches

from kvsl.lang.checked import Decl, resolve_path
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.phrasing import error, shown, warning
from kvsl.lang.plan import EMBEDDED_MODELS, ModelKind, ModelRef
from kvsl.lang.schema import TOP

# Number of transformer layers of each embedded model, so that layer indices can be
# checked without loading it (SmolLM2-135M: 30 decoder layers).
EMBEDDED_MODEL_LAYERS: dict[str, int] = {"smollm2-135m": 30}


def model_kind(name: str, directory: str) -> tuple[ModelKind, str]:
    """(kind, location) of a model name; see the module doc and `kvsl.lang.plan.ModelRef`."""
    if name in EMBEDDED_MODELS:
        return "embedded", name
    local = resolve_path(name, directory)
    if name.lower().endswith(".gguf"):
        return "gguf", local
    if name.startswith(("./", "../", "/", "~")) or os.path.isdir(local):
        return "directory", local
    return "hub", name


def model_ref(name: str, directory: str) -> ModelRef:
    """The `ModelRef` of a model name written in (or run from) `directory`."""
    kind, location = model_kind(name, directory)
    return ModelRef(name, kind, location)


def check_model(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """A spec's `model =`: a path that does not exist (KVS120), a near-miss name (KVS121)."""
    found = decl.valid(TOP, "model")
    name = found.text() if found is not None else None
    if found is None or name is None:
        return
    kind, location = model_kind(name, found.directory)
    if kind in ("gguf", "directory"):
        exists = os.path.isfile(location) if kind == "gguf" else os.path.isdir(location)
        if not exists:
            what = "model file" if kind == "gguf" else "model directory"
            diagnostics.append(
                error(
                    "KVS120",
                    f"{what} `{name}` does not exist",
                    found.span,
                    help=f"the path is relative to the spec: {shown(location)}",
                )
            )
    elif kind == "hub" and "/" not in name:
        close = get_close_matches(name, list(EMBEDDED_MODELS), n=1, cutoff=0.7)
        if close:
            diagnostics.append(
                warning(
                    "KVS121",
                    f"`{name}` is not an embedded model and will be looked up on the "
                    "Hugging Face hub",
                    found.span,
                    help=f"did you mean the embedded `{close[0]}`?",
                )
            )
