"""The per-example results cache of an eval: `results.jsonl`, one generated response a line.

Each record is keyed by

    <method name>/<settings hash>/<run>/<example id>/<question hash>

where the settings hash covers the model identity, the method's settings (coefficients,
vectors, layer, multiplier, CoT), the decoding settings (max new tokens, sampling,
temperature, top-p, per-run seed) and the system prompt. An interrupted eval resumes:
a second run with the same settings generates nothing.

A line that is not a valid record (torn by a kill, edited by hand) is a KVS613 warning,
and the run that finds one rewrites the file without it once (`compact_cache`, KVS620),
keeping every valid line byte for byte: the next runs read a clean cache and say nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kvsl.base.jsonl import append_jsonl, dumps, loads, locked_file, text_lines
from kvsl.base.plurals import counted
from kvsl.formats.questions import Example
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.plan import GenerationSettings
from kvsl.lang.source import Span

EVAL_FORMAT = 1  # bump when a change invalidates cached generations


def _question_hash(example: Example) -> str:
    return hashlib.sha256(f"{example.question}\x00{example.answer}".encode()).hexdigest()[:10]


def shard_paths(path: Path) -> list[Path]:
    """The per-rank shards of a results cache: `results.rank-0.jsonl`, ... (sorted)."""
    return sorted(path.parent.glob(f"{path.stem}.rank-*{path.suffix}"))



def _number(value: Any) -> bool:
    """A finite number a float holds (`float(10**400)` overflows)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_record(record: dict[str, Any]) -> bool:
    """Whether a cached line has every field a resumed eval reads, of the type it reads.

    The cache is a file in the user's folder: a line edited by hand (or by another tool)
    with `"key": [1]`, `"seconds": "x"` or `"forced_scores": 3` ended `kvsl eval` with a
    TypeError when it was used; such a line is now a KVS613 warning, and regenerated.
    """
    scores = record.get("forced_scores")
    return (
        isinstance(record.get("key"), str)
        and isinstance(record.get("response"), str)
        and isinstance(record.get("tokens"), int)
        and not isinstance(record.get("tokens"), bool)
        and _number(record.get("seconds", 0.0))
        and isinstance(record.get("forced_model"), str | None)
        and (scores is None or (isinstance(scores, dict) and all(map(_number, scores.values()))))
    )


def _record(line: str) -> dict[str, Any] | None:
    """The record a cache line holds, or None when it is not a valid one."""
    try:
        record = loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and _is_record(record) else None


def compact_cache(path: Path) -> tuple[int, int] | None:
    """Rewrite the cache `path` without its invalid lines: (lines dropped, lines kept), or
    None when it has none (nothing is written).

    Read and replaced under the appenders' lock (`kvsl.base.jsonl.locked_file`), so a line
    another process appends meanwhile is kept, and through `atomic_path`: a kill at any
    moment leaves the old file or the new one, never part of one. Every valid line is kept
    as its bytes were, in its order (a duplicate key too: the last one still wins); blank
    lines go with the invalid ones. OSError when it cannot be written (the old file stays).
    """
    from kvsl.base.atomic import atomic_path

    with locked_file(path, "rb") as handle:
        kept: list[bytes] = []
        dropped = 0
        for raw in handle.read().split(b"\n"):
            line = raw.decode("utf-8", errors="replace").removesuffix("\r")
            if not line.strip():
                continue
            if _record(line) is None:
                dropped += 1
            else:
                kept.append(raw)
        if not dropped:
            return None
        with atomic_path(path, fsync=True) as temporary:
            temporary.write_bytes(b"".join(raw + b"\n" for raw in kept))
    return dropped, len(kept)


class ResultsCache:
    """Append-only JSONL of generated responses, read back into a dict by key.

    Lines that are not valid records (a run killed mid-write) are skipped with a KVS613
    warning, collected in `warnings`; the file is then rewritten without them (KVS620, a
    note in `warnings` too), so a later run does not warn about the same lines again.

    With `rank` set (several processes under torchrun), this process appends to its own
    shard `<stem>.rank-<rank>.jsonl` beside the file, so no two processes write one file;
    `merge_shards` (rank 0, after a barrier) appends the shards to the file and removes
    them. Shards left by an interrupted run are read like the file itself, so it resumes.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, rank: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.rank = rank
        self.records: dict[str, dict[str, Any]] = {}
        self.warnings: list[Diagnostic] = []
        self.reload()
        if rank in (None, 0):  # one process rewrites the file; the others append to shards
            self._compact()

    def reload(self) -> None:
        """Read the file and any shards again (after another rank merged them)."""
        self.records = {}
        self.warnings = []
        if self.path is None:
            return
        for path in [self.path, *shard_paths(self.path)]:
            if path.exists():
                self._load(path)

    @property
    def write_path(self) -> Path | None:
        if self.path is None or self.rank is None:
            return self.path
        return self.path.with_name(f"{self.path.stem}.rank-{self.rank}{self.path.suffix}")

    def merge_shards(self) -> int:
        """Append every shard's lines to the file, then remove the shards; returns lines moved."""
        if self.path is None:
            return 0
        lines: list[str] = []
        shards = shard_paths(self.path)
        for shard in shards:
            text = shard.read_bytes().decode("utf-8", errors="replace")
            lines.extend(line for line in text_lines(text) if line.strip())
        if lines:
            append_jsonl(self.path, lines)
        for shard in shards:
            shard.unlink(missing_ok=True)
        return len(lines)

    def _compact(self) -> None:
        """Rewrite the file without the invalid lines this load warned about (once: the
        next load finds none); say so with KVS620, or why not with KVS621."""
        path = self.path
        if path is None or not any(w.span.path == str(path) for w in self.warnings):
            return
        try:
            done = compact_cache(path)
        except OSError as err:
            self.warnings.append(
                Diagnostic(
                    "KVS621",
                    Severity.WARNING,
                    f"could not rewrite the results cache without its invalid lines: "
                    f"{(err.strerror or str(err)).lower()}; they are warned about again "
                    "next time",
                    Span.whole_file(str(path)),
                )
            )
            return
        if done is not None:
            dropped, kept = done
            self.warnings.append(
                Diagnostic(
                    "KVS620",
                    Severity.NOTE,
                    f"rewrote the results cache without its {counted(dropped, 'invalid line')} "
                    f"({counted(kept, 'valid line')} kept)",
                    Span.whole_file(str(path)),
                )
            )

    def _load(self, path: Path) -> None:
        # Bytes decoded, not `read_text`: its universal newlines made a stray "\r" a line
        # break, and the KVS613 line numbers drifted from the file's.
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text_lines(text), start=1):
            if not line.strip():
                continue
            record = _record(line)
            if record is None:
                self.warnings.append(
                    Diagnostic(
                        "KVS613",
                        Severity.WARNING,
                        f"line {number} of the results cache is not a valid record; "
                        "that example is generated again",
                        Span(str(path), 0, 0, number, 1, number, 1),
                    )
                )
                continue
            self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def add(self, records: Iterable[dict[str, Any]]) -> None:
        batch = list(records)
        for record in batch:
            self.records[record["key"]] = record
        target = self.write_path
        if target is None:
            return
        # A killed run leaves at most one torn last line, which the loader skips.
        append_jsonl(
            target, (dumps(record, sort_keys=True) for record in batch)
        )


def cache_key(method: Any, run_hash: str, run: int, example: Example) -> str:
    return f"{method.name}/{run_hash}/{run}/{example.id}/{_question_hash(example)}"


def method_run_hash(
    method: Any,
    decode: GenerationSettings,
    run: int,
    identity: dict[str, object],
    system_prompt: str | None,
    runs: int = 1,
) -> str:
    from kvsl.eval.methods import COT_PREFIX, settings_hash

    return settings_hash(
        {
            "format": EVAL_FORMAT,
            "model": identity,
            "method": method.settings(),
            "decode": decode.for_run(run, runs).payload(),
            "system_prompt": system_prompt,
            "cot_prefix": COT_PREFIX if method.cot else None,
        }
    )


def shared_results_cache(path: str | os.PathLike[str]) -> ResultsCache:
    """The per-example cache for this process: under torchrun each rank appends to its own
    shard of it (merged by rank 0 after each `evaluate`); one process writes the file."""
    from kvsl.engine.distributed import barrier, dist_env

    env = dist_env()
    cache = ResultsCache(path, rank=env.rank if env.active else None)
    barrier()  # every rank has read the cache before any rank appends to it
    return cache
