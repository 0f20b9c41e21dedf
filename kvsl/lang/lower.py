"""Lowering: a checked, merged spec → the extraction `Plan` (every default filled in).

Only called on specs without errors; paths become absolute, the trace file is hashed,
the template text is inlined, and `Plan.create` computes both content hashes.

>>> import kvsl.lang as lang
>>> plan = lang.load_plan("specs/_example_syntax.kvs")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TypeVar

from kvsl.lang.checked import Decl, Resolved
from kvsl.lang.files import regular_file_sha256
from kvsl.lang.models import model_ref
from kvsl.lang.plan import (
    DEFAULT_MODEL,
    CoefficientOverride,
    ContrastPlan,
    ExtractPlan,
    GenerationSettings,
    ModelRef,
    Plan,
    SteerPlan,
    StyleMarkers,
    TeacherPlan,
)
from kvsl.lang.schema import POSITIONS, PRECISIONS, QUESTION_FORMATS, SELECTIONS, TOP

T = TypeVar("T")

# Trace files hold a few hundred JSON lines; hashing stops (as if the file did not exist)
# beyond this, so a huge or endless file cannot hold `kvsl plan` for long.
MAX_TRACES_BYTES = 1 << 30


def _sha256_or_empty(path: str) -> str:
    """Hex sha256 of a regular file's bytes, "" when it does not exist (yet).

    Never blocks on a FIFO nor reads a device (`kvsl.lang.files`).
    """
    return regular_file_sha256(path, MAX_TRACES_BYTES)


def lower(resolved: Resolved) -> Plan:
    """Build the plan of a checked spec (the caller guarantees it has no errors)."""
    decl = resolved.decl
    traces = decl.resolved_path("contrast", "traces") or decl.resolved_path("teacher", "traces")
    assert traces is not None  # the checker requires a trace source
    return Plan.create(
        style=decl.name or "",
        description=given(decl.text(TOP, "description"), ""),
        spec_path=os.path.abspath(decl.path),
        model=_model(decl),
        teacher=_teacher(resolved, traces),
        contrast=_contrast(decl, traces),
        extract=_extract(decl),
        steer=_steer(decl),
        generate=_generate(decl),
        markers=StyleMarkers(patterns=given(decl.strings(TOP, "markers"), ())),
    )


def given(value: T | None, default: T) -> T:
    """`value` when the spec wrote it, else the default (`0` and `""` are values too)."""
    return default if value is None else value


def _required(value: T | None, key: str) -> T:
    assert value is not None, f"the checker requires `{key}`"
    return value


def _model(decl: Decl) -> ModelRef:
    found = decl.valid(TOP, "model")
    name = found.text() if found is not None else None
    if found is None or name is None:
        return ModelRef(DEFAULT_MODEL, "embedded", DEFAULT_MODEL)
    return model_ref(name, found.directory)


def _teacher(resolved: Resolved, traces: str) -> TeacherPlan | None:
    decl = resolved.decl
    if "teacher" not in decl.blocks:
        return None
    defaults = TeacherPlan("", "", None, "")
    return TeacherPlan(
        model=given(decl.text("teacher", "model"), ""),
        template_source=resolved.template_source or "",
        template_path=resolved.template_path,
        traces=decl.resolved_path("teacher", "traces") or traces,
        base_url=decl.text("teacher", "base_url"),
        questions=decl.resolved_path("teacher", "questions"),
        question_format=decl.choice("teacher", "format", QUESTION_FORMATS),
        temperature=given(decl.number("teacher", "temperature"), defaults.temperature),
        max_tokens=given(decl.integer("teacher", "max_tokens"), defaults.max_tokens),
        concurrency=given(decl.integer("teacher", "concurrency"), defaults.concurrency),
    )


def _contrast(decl: Decl, traces: str) -> ContrastPlan:
    pool = decl.resolved_path("contrast", "questions")
    return ContrastPlan(
        traces=traces,
        traces_sha256=_sha256_or_empty(traces),
        pairs=_required(decl.integer("contrast", "pairs"), "pairs"),
        shots=_required(decl.integer("contrast", "shots"), "shots"),
        selection=given(decl.choice("contrast", "select", SELECTIONS), "random"),
        seed=given(decl.integer("contrast", "seed"), 0),
        system_prompt=decl.text("contrast", "system_prompt"),
        questions=pool,
        questions_sha256=_sha256_or_empty(pool) if pool else "",
        question_format=decl.choice("contrast", "format", QUESTION_FORMATS) if pool else None,
    )


def _extract(decl: Decl) -> ExtractPlan:
    defaults = ExtractPlan()
    return ExtractPlan(
        position=given(decl.choice("extract", "position", POSITIONS), defaults.position),
        offset_token=given(decl.text("extract", "offset_token"), defaults.offset_token),
        prefix=given(decl.text("extract", "prefix"), defaults.prefix),
        precision=given(decl.choice("extract", "precision", PRECISIONS), defaults.precision),
        batch_size=given(decl.integer("extract", "batch_size"), defaults.batch_size),
    )


def _steer(decl: Decl) -> SteerPlan:
    defaults = SteerPlan()
    return SteerPlan(
        layers=given(decl.layers("steer", "layers"), defaults.layers),
        key=given(decl.number("steer", "key"), defaults.key),
        value=given(decl.number("steer", "value"), defaults.value),
        overrides=tuple(
            CoefficientOverride(
                layers=o.layers,
                key=None if o.key is None else o.key.number(),
                value=None if o.value is None else o.value.number(),
            )
            for o in decl.overrides or ()
        ),
    )


def _generate(decl: Decl) -> GenerationSettings:
    defaults = GenerationSettings()

    def integer(key: str, default: int) -> int:
        return given(decl.integer("generate", key), default)

    def number(key: str, default: float) -> float:
        return given(decl.number("generate", key), default)

    return GenerationSettings(
        max_new_tokens=integer("max_new_tokens", defaults.max_new_tokens),
        sample=decl.text("generate", "mode") == "sample",
        temperature=number("temperature", defaults.temperature),
        top_p=number("top_p", defaults.top_p),
        seed=integer("seed", defaults.seed),
        stop=given(decl.strings("generate", "stop"), defaults.stop),
        min_new_tokens=integer("min_new_tokens", defaults.min_new_tokens),
        repetition_penalty=number("repetition_penalty", defaults.repetition_penalty),
        no_repeat_ngram_size=integer("no_repeat_ngram_size", defaults.no_repeat_ngram_size),
        top_k=integer("top_k", defaults.top_k),
    )
