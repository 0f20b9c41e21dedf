"""Fuzzing the eval's results cache (`results.jsonl`): a file in the user's folder that a
resumed `kvsl eval` or `kvsl tune` reads back.

Any bytes load: each line is a record with every field a resumed eval reads, of the type
it reads, or a KVS613 warning at that line (regenerated), never an exception later;
records the cache writes read back unchanged. `KVSL_FUZZ_EXAMPLES=N` runs N examples.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fuzz_settings import fuzz
from hostile_data import assert_coded, json_values, lines_file, records, texts
from hypothesis import example, given
from hypothesis import strategies as st

from kvsl.eval.forced import batch_prior, decide
from kvsl.eval.results_cache import ResultsCache

FOLDER = Path(tempfile.mkdtemp(prefix="kvsl-cache-fuzz-"))
score_maps = st.dictionaries(st.sampled_from("ABCD"), st.floats(-30, 0), max_size=4)
record_fields: dict[str, st.SearchStrategy[Any]] = {
    "key": texts(12),
    "response": texts(),
    "tokens": st.integers(0, 500),
    "seconds": st.floats(0, 9),
    "forced_model": st.sampled_from(["A", "B"]),
    "forced_scores": score_maps,
}


@fuzz(100)
@given(lines_file(records(record_fields)))
@example(b'{"key": [1], "response": "x", "tokens": 1}\n'
         b'{"key": "k", "response": "x", "tokens": 1, "seconds": "slow"}\n'
         b'{"key": "j", "response": "x", "tokens": 1, "forced_scores": {"A": 1e999}}\n')  # fmt: skip
def test_any_cache_file_loads_records_a_resume_can_read(data: bytes) -> None:
    path = FOLDER / "results.jsonl"
    path.write_bytes(data)
    cache = ResultsCache(path)
    if cache.warnings:
        assert_coded(cache.warnings, str(path), data)
        assert {w.code for w in cache.warnings} == {"KVS613", "KVS620"}  # warned, then dropped
    again = ResultsCache(path)  # the rewrite kept every record, and left nothing to warn about
    assert again.warnings == []
    assert json.dumps(again.records, sort_keys=True) == json.dumps(cache.records, sort_keys=True)
    for key, record in cache.records.items():  # as kvsl.eval.runner reads a cached record
        assert isinstance(key, str)
        int(record["tokens"]), float(record.get("seconds", 0.0)), str(record["response"])
        scores = record.get("forced_scores")
        decide(scores)
        if scores:
            batch_prior([scores] * 8)


@fuzz(60)
@given(st.lists(st.fixed_dictionaries({
    "key": st.text(min_size=1, max_size=12), "response": st.text(max_size=40),
    "tokens": st.integers(0, 500), "seconds": st.floats(0, 9), "forced_scores": score_maps,
}), min_size=1, max_size=4, unique_by=lambda r: r["key"]))  # fmt: skip
def test_records_read_back_as_written(written: list[dict[str, Any]]) -> None:
    path = FOLDER / "written.jsonl"
    path.unlink(missing_ok=True)
    ResultsCache(path).add(written)
    again = ResultsCache(path)
    assert not again.warnings
    assert again.records == {r["key"]: json.loads(json.dumps(r)) for r in written}


@fuzz(40)
@given(st.lists(json_values(6), min_size=1, max_size=3))
def test_a_cache_line_of_any_json_is_a_record_or_a_warning(values: list[Any]) -> None:
    path = FOLDER / "any.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in values), encoding="utf-8",
                    errors="surrogatepass")  # fmt: skip
    cache = ResultsCache(path)
    warned = [w for w in cache.warnings if w.code == "KVS613"]  # and a KVS620 note: dropped
    assert len(cache.records) + len(warned) <= len(values)
