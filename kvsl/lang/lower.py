"""Lowering: a checked, merged spec → the extraction `Plan` (every default filled in).

Only called on specs without errors; paths become absolute, the trace file is hashed,
the template text is inlined, and `Plan.create` computes both content hashes.

>>> import kvsl.lang as lang
>>> plan = lang.load_plan("specs/_example_syntax.kvs")  # doctest: +SKIP
"""

from __future__ import annotations

import os

from kvsl.lang.check import TOP, Field, Resolved, model_kind
from kvsl.lang.checked import INVALID, resolve_path
from kvsl.lang.files import regular_file_sha256
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

    def get(block: str, key: str, default: object = None) -> object:
        found = decl.get(block, key)
        if found is None or found.value is INVALID:
            return default
        return found.value

    def path(found: Field | None) -> str | None:
        if found is None or found.value is INVALID:
            return None
        return resolve_path(found.value, found.directory)

    model_field = decl.get(TOP, "model")
    if model_field is not None:
        kind, location = model_kind(model_field.value, model_field.directory)
        model = ModelRef(model_field.value, kind, location)  # type: ignore[arg-type]
    else:
        model = ModelRef(DEFAULT_MODEL, "embedded", DEFAULT_MODEL)

    traces = path(decl.get("contrast", "traces")) or path(decl.get("teacher", "traces"))
    assert traces is not None  # the checker requires a trace source
    teacher = None
    if "teacher" in decl.blocks:
        defaults = TeacherPlan("", "", None, "")
        teacher = TeacherPlan(
            model=str(get("teacher", "model")),
            template_source=resolved.template_source or "",
            template_path=resolved.template_path,
            traces=path(decl.get("teacher", "traces")) or traces,
            base_url=get("teacher", "base_url"),  # type: ignore[arg-type]
            questions=path(decl.get("teacher", "questions")),
            question_format=get("teacher", "format"),  # type: ignore[arg-type]
            temperature=float(get("teacher", "temperature", defaults.temperature)),  # type: ignore[arg-type]
            max_tokens=int(get("teacher", "max_tokens", defaults.max_tokens)),  # type: ignore[call-overload]
            concurrency=int(get("teacher", "concurrency", defaults.concurrency)),  # type: ignore[call-overload]
        )
    contrast = ContrastPlan(
        traces=traces,
        traces_sha256=_sha256_or_empty(traces),
        pairs=int(get("contrast", "pairs")),  # type: ignore[call-overload]
        shots=int(get("contrast", "shots")),  # type: ignore[call-overload]
        selection=get("contrast", "select", "random"),  # type: ignore[arg-type]
        seed=int(get("contrast", "seed", 0)),  # type: ignore[call-overload]
        system_prompt=get("contrast", "system_prompt"),  # type: ignore[arg-type]
        questions=(pool := path(decl.get("contrast", "questions"))),
        questions_sha256=_sha256_or_empty(pool) if pool else "",
        question_format=get("contrast", "format") if pool else None,  # type: ignore[arg-type]
    )
    extract_defaults = ExtractPlan()
    extract = ExtractPlan(
        position=get("extract", "position", extract_defaults.position),  # type: ignore[arg-type]
        offset_token=get("extract", "offset_token", extract_defaults.offset_token),  # type: ignore[arg-type]
        prefix=get("extract", "prefix", extract_defaults.prefix),  # type: ignore[arg-type]
        precision=get("extract", "precision", extract_defaults.precision),  # type: ignore[arg-type]
        batch_size=get("extract", "batch_size", extract_defaults.batch_size),  # type: ignore[arg-type]
    )
    steer_defaults = SteerPlan()
    steer = SteerPlan(
        layers=get("steer", "layers", steer_defaults.layers),  # type: ignore[arg-type]
        key=float(get("steer", "key", steer_defaults.key)),  # type: ignore[arg-type]
        value=float(get("steer", "value", steer_defaults.value)),  # type: ignore[arg-type]
        overrides=tuple(
            CoefficientOverride(
                layers=o.layers,
                key=None if o.key is None else float(o.key.value),
                value=None if o.value is None else float(o.value.value),
            )
            for o in decl.overrides or ()
        ),
    )
    generate_defaults = GenerationSettings()

    def number(key: str, cast: type) -> object:
        return cast(get("generate", key, getattr(generate_defaults, key)))

    generate = GenerationSettings(
        max_new_tokens=number("max_new_tokens", int),  # type: ignore[arg-type]
        sample=get("generate", "mode", "greedy") == "sample",
        temperature=number("temperature", float),  # type: ignore[arg-type]
        top_p=number("top_p", float),  # type: ignore[arg-type]
        seed=number("seed", int),  # type: ignore[arg-type]
        stop=tuple(get("generate", "stop", ())),  # type: ignore[arg-type]
        min_new_tokens=number("min_new_tokens", int),  # type: ignore[arg-type]
        repetition_penalty=number("repetition_penalty", float),  # type: ignore[arg-type]
        no_repeat_ngram_size=number("no_repeat_ngram_size", int),  # type: ignore[arg-type]
        top_k=number("top_k", int),  # type: ignore[arg-type]
    )
    return Plan.create(
        style=decl.name or "",
        description=str(get(TOP, "description", "")),
        spec_path=os.path.abspath(decl.path),
        model=model,
        teacher=teacher,
        contrast=contrast,
        extract=extract,
        steer=steer,
        generate=generate,
        markers=StyleMarkers(patterns=tuple(get(TOP, "markers", ()))),  # type: ignore[arg-type]
    )
