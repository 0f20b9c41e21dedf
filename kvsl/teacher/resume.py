"""Resuming a teaching run: which questions are done, skipped for good, or repeated.

A question is identified by its id *and* its text: ids made from line numbers
(`train-12`) repeat across benchmark files, so a GSM8K `train-12` is never taken for a
PIQA `train-12`. Questions already in the trace file are never asked again, nor are
questions skipped for a permanent reason unless `retry_skipped` is set; a question that
repeats an earlier one of the source (after whitespace is normalised) is asked once.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kvsl.base.jsonl import loads
from kvsl.formats.questions import Example
from kvsl.formats.traces import load_traces, read_trace_bytes
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.source import Span
from kvsl.teacher.skiplog import iter_skip_log


def question_hash(question: str) -> str:
    """A short, stable fingerprint of a question's text (16 hex digits).

    >>> question_hash("What is 2 + 2?") == question_hash("  What is 2 + 2?\\n")
    True
    """
    return hashlib.sha256(question.strip().encode("utf-8")).hexdigest()[:16]


def normalized_question(question: str) -> str:
    """A question's text as duplicates are found: Unicode NFC, runs of whitespace as one space.

    >>> normalized_question("What is\\n 2 + 2? ") == normalized_question("What is 2 + 2?")
    True
    """
    return " ".join(unicodedata.normalize("NFC", question).split())


# --- what is already done ----------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """What earlier runs settled: traces written, ids used, questions skipped for good."""

    done: frozenset[str]  # question hashes of the traces in the file
    used_ids: frozenset[str]  # trace ids in the file
    skipped: frozenset[tuple[str, str]]  # (id, question hash) skipped for good
    warnings: tuple[Diagnostic, ...] = ()  # KVS527: a torn last line cut off


def torn_tail(data: bytes) -> tuple[int, int] | None:
    """(line number, byte offset) of a last line cut short by an interrupted append, or None.

    `append_trace` writes a whole line and its newline in one fsynced write, so a line
    without its newline that is not a JSON object is the part of a trace a kill (or a
    full disk) left. A complete last line without a newline (an editor's) is not torn.

    >>> torn_tail(b'{"question": "q", "steps": ["s"], "answer": "1"}\\n{"question": "r", "st')
    (2, 49)
    >>> torn_tail(b'{"question": "q", "steps": ["s"], "answer": "1"}') is None
    True
    """
    if not data or data.endswith(b"\n"):
        return None
    start = data.rfind(b"\n") + 1
    try:
        record = loads(data[start:])
    except ValueError:  # JSON cut short, or bytes cut inside a UTF-8 character
        return data.count(b"\n") + 1, start
    return None if isinstance(record, dict) else (data.count(b"\n") + 1, start)


def _cut_torn_tail(traces_path: Path, line: int, offset: int, *, repair: bool) -> Diagnostic:
    """Cut off a torn last line (its question is asked again), as a KVS527 warning; a dry
    run (`repair` False) only says it will be."""
    if repair:
        with traces_path.open("r+b") as handle:
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())
    done = "it was removed" if repair else "a run will remove it"
    return Diagnostic(
        "KVS527",
        Severity.WARNING,
        f"line {line} of the trace file was cut short by an interrupted write; {done} "
        "and its question is asked again",
        # At the torn line itself (after a repair the renderer shows it empty), not 1:1.
        Span(str(traces_path), 0, 0, line, 1, line, 1),
    )


def already_done(traces_path: Path, skip_path: Path, *, repair: bool = True) -> Done:
    """What the trace file and the skip log say is done (KVS50x for a damaged trace file).

    A last line torn by an interrupted append is cut off first (KVS527 warning), so a
    killed run resumes; with `repair` False (a dry run) the file is left as it is and the
    warning says a run will cut it. Any other bad line stops the run, at its line.
    """
    done: set[str] = set()
    used_ids: set[str] = set()
    warnings: list[Diagnostic] = []
    if traces_path.exists():
        data = read_trace_bytes(traces_path)  # KVS500 for what cannot be read
        torn = torn_tail(data)
        if torn is not None:
            warnings.append(_cut_torn_tail(traces_path, *torn, repair=repair))
            data = data[: torn[1]]
        # A trace file with bad lines is reported (KVS50x at file:line) before anything is
        # asked: appending to it would only hide the damage from `kvsl build`.
        for trace in load_traces(traces_path, data):
            done.add(question_hash(trace.question))
            if trace.id is not None:
                used_ids.add(trace.id)
    latest: dict[tuple[str, str], bool] = {}
    for record in iter_skip_log(skip_path):
        if isinstance(record.get("id"), str) and isinstance(record.get("question_hash"), str):
            key = (str(record["id"]), str(record["question_hash"]))
            latest[key] = bool(record.get("permanent"))  # the latest record wins
    return Done(
        frozenset(done),
        frozenset(used_ids),
        frozenset(key for key, permanent in latest.items() if permanent),
        tuple(warnings),
    )


@dataclass(frozen=True)
class Todo:
    """The source's questions sorted out: those to ask, and how many of the rest were what."""

    ask: list[Example]
    already_done: int  # in the trace file
    previously_skipped: int  # skipped for a permanent reason by an earlier run
    duplicates: int  # repeat an earlier question of the source


def questions_to_ask(examples: Sequence[Example], done: Done, *, retry_skipped: bool) -> Todo:
    """The examples still to ask, in source order; each repeated question once."""
    ask: list[Example] = []
    already = previously_skipped = duplicates = 0
    seen: set[str] = set()
    for example in examples:
        text = normalized_question(example.question)
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        fingerprint = question_hash(example.question)
        if fingerprint in done.done:
            already += 1
        elif (example.id, fingerprint) in done.skipped and not retry_skipped:
            previously_skipped += 1
        else:
            ask.append(example)
    return Todo(ask, already, previously_skipped, duplicates)
