"""The registry of diagnostic codes, grouped by phase. Codes are never reused.

    KVS0xx  syntax (parser)
    KVS1xx  meaning (checker: keys, types, ranges, files, extends)
    KVS2xx  templates (Jinja2)
    KVS3xx  the plan against the model (layers, architecture, model loading)
    KVS4xx  artifacts (400-449) and run time (450-499)
    KVS5xx  teacher and trace files
    KVS6xx  evaluation and benchmarks
    KVS7xx  calibration (`kvsl tune`): the dev set, the search grid, writing the spec
    KVS8xx  the steering server (kvsl serve)
    KVS9xx  the editor server (kvsl lsp)

Each phase keeps its entries in its own module of plain data; this module only merges
them, so `kvsl explain` works without importing any back-end code. The entry type `Code`
lives in `kvsl.lang.code_entry`, which the tables import (no cycle); it is re-exported here.
"""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.codes_eval import EVAL_CODES
from kvsl.lang.codes_frontend import FRONTEND_CODES
from kvsl.lang.codes_lsp import LSP_CODES
from kvsl.lang.codes_run import RUN_CODES
from kvsl.lang.codes_runtime import RUNTIME_CODES
from kvsl.lang.codes_serve import SERVE_CODES
from kvsl.lang.codes_teacher import TEACHER_CODES
from kvsl.lang.codes_tune import TUNE_CODES

__all__ = ["CODES", "Code"]


def _merge(*groups: tuple[Code, ...]) -> dict[str, Code]:
    registry: dict[str, Code] = {}
    for group in groups:
        for entry in group:
            if entry.code in registry:
                raise RuntimeError(f"diagnostic code {entry.code} is registered twice")
            registry[entry.code] = entry
    return dict(sorted(registry.items()))


CODES: dict[str, Code] = _merge(
    FRONTEND_CODES,
    RUNTIME_CODES,
    RUN_CODES,
    TEACHER_CODES,
    EVAL_CODES,
    TUNE_CODES,
    SERVE_CODES,
    LSP_CODES,
)
