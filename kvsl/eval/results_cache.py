"""The per-example results cache of an eval: `results.jsonl`, one generated response a line.

Each record is keyed by

    <method name>/<settings hash>/<run>/<example id>/<question hash>

where the settings hash covers the model identity, the method's settings (coefficients,
vectors, layer, multiplier, CoT), the decoding settings (max new tokens, sampling,
temperature, top-p, per-run seed) and the system prompt. An interrupted eval resumes:
a second run with the same settings generates nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kvsl.base.jsonl import append_jsonl, loads, text_lines
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


class ResultsCache:
    """Append-only JSONL of generated responses, read back into a dict by key.

    Lines that are not valid records (a run killed mid-write) are skipped with a KVS613
    warning, collected in `warnings`.

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

    def _load(self, path: Path) -> None:
        # Bytes decoded, not `read_text`: its universal newlines made a stray "\r" a line
        # break, and the KVS613 line numbers drifted from the file's.
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text_lines(text), start=1):
            if not line.strip():
                continue
            try:
                record = loads(line)
                if not isinstance(record, dict) or not _is_record(record):
                    raise TypeError("a record needs the shape `add` writes")
                key = record["key"]
            except (json.JSONDecodeError, KeyError, TypeError):
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
            self.records[key] = record

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
            target, (json.dumps(record, ensure_ascii=False, sort_keys=True) for record in batch)
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
