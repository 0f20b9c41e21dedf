"""The skip log: one JSON line per question the teacher gave no usable trace for.

It sits next to the trace file (`traces/x.jsonl` → `traces/x.skipped.jsonl`). A record
says why (`reason`), and whether a rerun asks the question again (`permanent` False:
request failures; True: no tags, wrong answer, truncated reply). It is a log, not data:
a line cut short by a kill is ignored when it is read back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kvsl.base.jsonl import dumps, loads, text_lines
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span


@dataclass(frozen=True)
class SkipRecord:
    """One question the teacher did not produce a usable trace for."""

    id: str
    reason: str  # no_steps, no_answer, wrong_answer, truncated, empty_reply, bad_request, ...
    permanent: bool  # False: asked again by the next run
    detail: str = ""
    expected: str | None = None
    got: str | None = None
    reply: str | None = None  # the start of the teacher's reply, for debugging templates
    model: str | None = None
    question_hash: str | None = None  # `question_hash(question)`: ids alone can repeat

    def to_json(self) -> str:
        record: dict[str, object] = {
            "id": self.id,
            "reason": self.reason,
            "permanent": self.permanent,
            "detail": self.detail,
        }
        for key in ("expected", "got", "reply", "model", "question_hash"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        record["time"] = datetime.now(UTC).isoformat(timespec="seconds")
        return dumps(record)


def skip_log_path(traces_path: str | os.PathLike[str]) -> Path:
    """The skip log that sits next to a trace file.

    >>> skip_log_path("traces/step_by_step.jsonl").name
    'step_by_step.skipped.jsonl'
    """
    path = Path(traces_path)
    return path.with_name(f"{path.stem}.skipped{path.suffix or '.jsonl'}")


def iter_skip_log(path: str | os.PathLike[str]) -> Iterable[dict[str, object]]:
    """The records of a skip log; lines that are not JSON objects (a line cut short by a
    kill) are ignored: it is a log, not data."""
    target = Path(path)
    if not target.exists():
        return
    try:
        text = target.read_bytes().decode("utf-8", errors="replace")  # no universal newlines
    except OSError as err:
        raise KvslError.one(
            "KVS526",
            f"cannot read the skip log `{target}`: {err.strerror or err}",
            Span.whole_file(str(target)),
            help="remove or rename what is in its place (it sits beside the trace file)",
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
    for line in text_lines(text):
        try:
            record = loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record
