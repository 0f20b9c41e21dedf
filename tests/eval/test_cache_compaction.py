"""The results cache drops its invalid lines once: a torn line was warned about (KVS613) on
every later run, for ever, since nothing ever rewrote the file.

The run that finds invalid lines rewrites `results.jsonl` without them (KVS620), keeping
every valid line byte for byte and in order; a kill at any moment of that rewrite leaves
the old file or the new one, and a line appended meanwhile by another process is kept.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest
from killing import every_kill

from kvsl.base.jsonl import append_jsonl, locked_file
from kvsl.eval.results_cache import ResultsCache, compact_cache


def _line(key: str, response: str = "The answer is 4.") -> bytes:
    record = {"key": key, "response": response, "tokens": 5, "seconds": 0.5}
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")


GOOD = [
    _line("plain/h/0/q1/a"),
    _line("plain/h/0/q2/b", "Schritt für Schritt\u2028weiter"),  # raw U+2028 inside a string
    _line("plain/h/0/q3/c") + b"\r",  # a line saved with a Windows line end
    _line("plain/h/0/q4/d", "caf\ufffd").replace("\ufffd".encode(), b"\xe9"),  # not UTF-8 inside
    _line("plain/h/0/q1/a", "a later answer for the same key"),  # a duplicate key: kept
]
BAD = [b'{"key": "plain/h/0/q5/e", "resp', b'{"key": 7, "response": "x", "tokens": 1}', b"null"]
# Valid and invalid lines mixed, a blank line, and a torn last line without its newline.
ORIGINAL = b"\n".join([GOOD[0], BAD[0], GOOD[1], b"", GOOD[2], BAD[1], GOOD[3], BAD[2], GOOD[4],
                       b'{"key": "plain/h/0/q6/f", "response": "The ans'])  # fmt: skip
COMPACTED = b"".join(line + b"\n" for line in GOOD)


def _cache(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "results.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ORIGINAL)
    return path


def test_the_run_that_finds_invalid_lines_drops_them_once_and_says_so(tmp_path: Path) -> None:
    path = _cache(tmp_path)
    first = ResultsCache(path)
    codes = [w.code for w in first.warnings]
    assert codes == ["KVS613"] * 4 + ["KVS620"]
    note = first.warnings[-1]
    assert note.severity.value == "note" and note.span.path == str(path)
    assert note.message == "rewrote the results cache without its 4 invalid lines (5 valid lines kept)"
    assert path.read_bytes() == COMPACTED  # every valid line, byte for byte, in order
    again = ResultsCache(path)
    assert again.warnings == [] and again.records == first.records
    assert again.records["plain/h/0/q1/a"]["response"] == "a later answer for the same key"


def test_a_clean_cache_is_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(COMPACTED + b"\n")  # a blank line alone is no reason to rewrite
    before = path.stat()
    cache = ResultsCache(path)
    assert cache.warnings == [] and len(cache.records) == 4
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert compact_cache(path) is None


def test_one_invalid_line_is_counted_in_the_singular(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(GOOD[0] + b"\n" + BAD[0])
    note = ResultsCache(path).warnings[-1]
    assert note.message == "rewrote the results cache without its 1 invalid line (1 valid line kept)"


def test_a_failed_rewrite_is_kvs621_and_leaves_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kvsl.base.atomic

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = _cache(tmp_path)
    monkeypatch.setattr(kvsl.base.atomic, "atomic_path", full_disk)
    cache = ResultsCache(path)
    assert [w.code for w in cache.warnings][-1] == "KVS621"
    assert "no space left on device" in cache.warnings[-1].message
    assert path.read_bytes() == ORIGINAL and len(cache.records) == 4


def test_only_one_process_of_a_distributed_run_rewrites(tmp_path: Path) -> None:
    path = _cache(tmp_path)
    assert "KVS620" not in {w.code for w in ResultsCache(path, rank=1).warnings}
    assert path.read_bytes() == ORIGINAL
    assert "KVS620" in {w.code for w in ResultsCache(path, rank=0).warnings}
    assert path.read_bytes() == COMPACTED


def _opened_by_me(path: Path) -> int:
    """How many descriptors of this process point at `path` (Linux's /proc)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}") == os.path.realpath(path)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_line_appended_during_the_rewrite_goes_to_the_new_file(tmp_path: Path) -> None:
    """An appender that opened the file before it was replaced waits for the rewrite's lock,
    then sees that the name points at a new file and appends there, not to the old one."""
    path = _cache(tmp_path)
    late = _line("plain/h/0/q9/z", "appended while the cache was rewritten")
    with locked_file(path, "rb"):
        appender = threading.Thread(target=append_jsonl, args=(path, [late.decode()]))
        appender.start()
        deadline = time.monotonic() + 10
        while _opened_by_me(path) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the appender holds the old file open, waiting
        assert _opened_by_me(path) == 2
        assert appender.is_alive()
        path.with_name("new.jsonl").write_bytes(COMPACTED)
        os.replace(path.with_name("new.jsonl"), path)  # what the rewrite does, under the lock
    appender.join(timeout=10)
    assert not appender.is_alive()
    assert path.read_bytes() == COMPACTED + late + b"\n"


def test_a_kill_at_any_moment_of_the_rewrite_loses_no_valid_line(tmp_path: Path) -> None:
    path = _cache(tmp_path)
    child = "import sys\nfrom kvsl.eval.results_cache import ResultsCache\nResultsCache(sys.argv[1])\n"
    kills = 0
    for _ in every_kill(path.parent, ["-c", child, str(path)], cwd=tmp_path,
                        before=lambda: path.write_bytes(ORIGINAL)):  # fmt: skip
        kills += 1
        now = path.read_bytes()
        assert now in (ORIGINAL, COMPACTED), f"a mixed or cut cache after kill {kills}:\n{now!r}"
        others = {p.name for p in path.parent.iterdir()} - {"results.jsonl"}
        assert all(n.startswith(".results.jsonl.") and n.endswith(".tmp") for n in others), others
    assert path.read_bytes() == COMPACTED
    assert kills >= 5  # read, locked and read, temporary made, written, flushed, renamed
    clean = ResultsCache(path)
    assert clean.warnings == [] and len(clean.records) == 4
