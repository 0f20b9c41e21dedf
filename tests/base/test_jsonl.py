"""`kvsl.base.jsonl.append_jsonl`: the one appender of trace files, skip logs and eval caches."""

from __future__ import annotations

import json
from pathlib import Path

from kvsl.base.jsonl import append_jsonl
from kvsl.eval.results_cache import ResultsCache
from kvsl.formats.traces import Trace, append_trace, iter_trace_file


def test_appends_full_lines_and_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "log.jsonl"
    append_jsonl(target, ['{"a": 1}', '{"b": 2}'])
    append_jsonl(target, iter(['{"c": 3}']))
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n{"b": 2}\n{"c": 3}\n'


def test_nothing_to_append_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "log.jsonl"
    append_jsonl(target, [])
    assert not target.parent.exists()


def test_a_torn_last_line_stays_one_bad_line(tmp_path: Path) -> None:
    target = tmp_path / "log.jsonl"
    target.write_text('{"a": 1}\n{"b": 2', encoding="utf-8")  # a kill mid-write
    append_jsonl(target, ['{"c": 3}'])
    assert target.read_text(encoding="utf-8").splitlines() == ['{"a": 1}', '{"b": 2', '{"c": 3}']


def test_trace_files_are_repaired_the_same_way(tmp_path: Path) -> None:
    target = tmp_path / "traces.jsonl"
    target.write_text('{"question": "1+1?", "steps": ["one', encoding="utf-8")
    append_trace(target, Trace("2+2?", ("2 plus 2 is 4.",), "4"))
    items = list(iter_trace_file(target))
    assert len(items) == 2 and not isinstance(items[0], Trace)
    assert isinstance(items[1], Trace) and items[1].answer == "4"


def test_the_eval_cache_is_repaired_the_same_way(tmp_path: Path) -> None:
    target = tmp_path / "cache.jsonl"
    target.write_text('{"key": "x", "resp', encoding="utf-8")
    ResultsCache(target).add([{"key": "k1", "response": "4", "tokens": 1}])
    last = target.read_text(encoding="utf-8").splitlines()[-1]
    assert json.loads(last) == {"key": "k1", "response": "4", "tokens": 1}
    assert ResultsCache(target).get("k1") == {"key": "k1", "response": "4", "tokens": 1}


def test_a_file_system_without_locks_still_appends(tmp_path: Path, monkeypatch) -> None:
    """`flock` refused (ENOLCK on some network mounts): the append goes on without the lock."""
    import errno

    import kvsl.base.exclusive as exclusive

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(exclusive.fcntl, "flock", no_locks)
    target = tmp_path / "log.jsonl"
    append_jsonl(target, ['{"a": 1}'])
    append_jsonl(target, ['{"b": 2}'])
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n{"b": 2}\n'
