"""The trace file is read once per build, and the bytes it parses are the bytes it hashed.

The plan carries the file's sha256 (taken when the spec is lowered; part of the vector
hash). `kvsl build` reads the file once more, checks those bytes against the plan's hash
(KVS308) and parses the same bytes (`kvsl.engine.contrast.plan_traces`): no second hash,
no window between the check and the parse. Opens are counted with an audit hook, so any
reader counts (pathlib, `open`, `os.open`), not only the one the code means to use.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, make_plan, tiny_spec

from kvsl.engine.build import artifact_path_for, build
from kvsl.lang import load_plan
from kvsl.lang.diagnostics import KvslError

_OPENED: list[str] | None = None  # paths opened while a `_counting_opens` block runs
_HOOKED = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if (
        _OPENED is not None
        and event == "open"
        and args
        and isinstance(args[0], str | bytes | os.PathLike)
    ):
        _OPENED.append(os.path.realpath(os.fsdecode(args[0])))  # type: ignore[arg-type]


@contextmanager
def _counting_opens() -> Iterator[list[str]]:
    """Every file path opened inside the block (audit hooks cannot be removed: it idles)."""
    global _OPENED, _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def _quiet() -> object:
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=200)


def _write_traces(path: Path, count: int) -> None:
    path.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES[:count]), encoding="utf-8")


@pytest.fixture
def spec(tmp_path: Path, tiny_model_dir: Path) -> Path:
    _write_traces(tmp_path / "traces.jsonl", len(TINY_TRACES))
    path = tmp_path / "tiny.kvs"
    path.write_text(tiny_spec(tiny_model_dir, pairs=3, value=4), encoding="utf-8")
    return path


def test_a_build_reads_the_trace_file_once(tiny_traces: Path, tiny_loaded_llama) -> None:
    plan = make_plan(tiny_traces, pairs=2)
    with _counting_opens() as opened:
        result = build(plan, loaded=tiny_loaded_llama, console=_quiet(), progress=False)
    assert result.built
    assert opened.count(os.path.realpath(tiny_traces)) == 1


def test_after_the_plan_a_build_reads_the_trace_file_once(spec: Path) -> None:
    traces = os.path.realpath(spec.parent / "traces.jsonl")
    # Lowering hashed the file into the plan (the checker also opens it, without reading,
    # to see that it is a regular file: kvsl.lang.files.regular_file_problem).
    plan = load_plan(spec)
    with _counting_opens() as opened:
        assert build(plan, console=_quiet(), progress=False).built
    assert opened.count(traces) == 1  # the build checks and parses the same bytes
    with _counting_opens() as opened:
        assert not build(plan, console=_quiet(), progress=False).built
    assert opened.count(traces) == 0  # up to date: the artifact's vector hash says so


def test_changed_traces_change_the_vector_hash_and_stop_a_stale_plan(spec: Path) -> None:
    before = load_plan(spec)
    _write_traces(spec.parent / "traces.jsonl", len(TINY_TRACES) - 1)
    after = load_plan(spec)
    assert after.contrast.traces_sha256 != before.contrast.traces_sha256
    assert after.vector_hash != before.vector_hash
    assert artifact_path_for(after) != artifact_path_for(before)
    with pytest.raises(KvslError) as caught:
        build(before, console=_quiet(), progress=False)
    assert [d.code for d in caught.value.diagnostics] == ["KVS308"]
    assert not artifact_path_for(before).exists()
    assert build(after, console=_quiet(), progress=False).built
