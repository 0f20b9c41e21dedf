"""The registry of diagnostic codes, grouped by phase. Codes are never reused.

    KVS0xx  syntax (parser)
    KVS1xx  meaning (checker: keys, types, ranges, files, extends)
    KVS2xx  templates (Jinja2)
    KVS3xx  the plan against the model (layers, architecture, model loading)
    KVS4xx  artifacts (400-449) and run time (450-499)
    KVS5xx  teacher and trace files
    KVS6xx  evaluation and benchmarks

Each phase keeps its entries in its own module of plain data; this module only merges
them, so `kvsl explain` works without importing any back-end code.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsl.lang.diagnostics import Severity


@dataclass(frozen=True)
class Code:
    code: str  # "KVS104"
    title: str  # short, lowercase: "unknown key"
    severity: Severity  # the default severity this code is reported with
    explanation: str  # a paragraph: what it means and why kvsl reports it
    bad: str  # an example that triggers it (spec text, or a command line for run-time codes)
    good: str  # the same example, fixed


def _merge(*groups: tuple[Code, ...]) -> dict[str, Code]:
    registry: dict[str, Code] = {}
    for group in groups:
        for entry in group:
            if entry.code in registry:
                raise RuntimeError(f"diagnostic code {entry.code} is registered twice")
            registry[entry.code] = entry
    return dict(sorted(registry.items()))


def _load() -> dict[str, Code]:
    from kvsl.lang.codes_eval import EVAL_CODES
    from kvsl.lang.codes_frontend import FRONTEND_CODES
    from kvsl.lang.codes_run import RUN_CODES
    from kvsl.lang.codes_runtime import RUNTIME_CODES
    from kvsl.lang.codes_serve import SERVE_CODES
    from kvsl.lang.codes_teacher import TEACHER_CODES

    return _merge(FRONTEND_CODES, RUNTIME_CODES, RUN_CODES, TEACHER_CODES, EVAL_CODES, SERVE_CODES)


CODES: dict[str, Code] = _load()
