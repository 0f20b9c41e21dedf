"""The paper's recipe in the language: `contrast.questions`/`format` and `extract.prefix`
(keys, the right shots/pairs rule for each case, lowering, hashes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from lang_support import ROOT, write_spec

from kvsl.lang import compile_spec, load_plan

POOL = "".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(10))


def _spec(pairs: int, shots: int, extra: str = "", extract: str = "") -> str:
    return f'''style "recipe" {{
  description = "A recipe."
  contrast {{
    traces = "traces.jsonl"
    pairs = {pairs}
    shots = {shots}
    {extra}
  }}
  {extract}
}}
'''


def _codes(path) -> list[str]:
    return [d.code for d in compile_spec(path)[1]]


def test_with_a_pool_shots_may_exceed_pairs_up_to_the_traces(tmp_path):
    (tmp_path / "pool.jsonl").write_text(POOL, encoding="utf-8")
    pool = 'questions = "pool.jsonl"  format = plain'
    # 5 traces beside the spec (write_spec): k = 5 is fine with 2 pairs, k = 6 is not.
    assert _codes(write_spec(tmp_path, _spec(2, 5, pool))) == []
    assert _codes(write_spec(tmp_path, _spec(2, 6, pool))) == ["KVS127"]
    assert _codes(write_spec(tmp_path, _spec(10, 1, pool))) == []
    assert _codes(write_spec(tmp_path, _spec(11, 1, pool))) == ["KVS128"]
    # Without a pool the old rule holds: k <= N - 1.
    assert _codes(write_spec(tmp_path, _spec(2, 2))) == ["KVS110"]


def test_missing_pool_is_kvs114_and_format_alone_is_kvs129(tmp_path):
    assert _codes(write_spec(tmp_path, _spec(2, 1, 'questions = "nope.jsonl"'))) == ["KVS114"]
    assert _codes(write_spec(tmp_path, _spec(2, 1, "format = gsm8k"))) == ["KVS129"]


def test_pool_and_prefix_lower_into_the_plan_and_its_hashes(tmp_path):
    (tmp_path / "pool.jsonl").write_text(POOL, encoding="utf-8")
    pool = 'questions = "pool.jsonl"  format = plain'
    prefix = "extract { prefix = \"Let's think step by step.\" }"
    bare = load_plan(write_spec(tmp_path, _spec(4, 1)))
    pooled = load_plan(write_spec(tmp_path, _spec(4, 1, pool)))
    prefixed = load_plan(write_spec(tmp_path, _spec(4, 1, extract=prefix)))
    assert pooled.contrast.questions == str(tmp_path / "pool.jsonl")
    assert pooled.contrast.question_format == "plain"
    assert pooled.contrast.questions_sha256 == hashlib.sha256(POOL.encode()).hexdigest()
    assert prefixed.extract.prefix == "Let's think step by step."
    hashes = {(p.vector_hash, p.plan_hash) for p in (bare, pooled, prefixed)}
    assert len({v for v, _ in hashes}) == 3 and len({p for _, p in hashes}) == 3
    # The pool's content is part of the vector hash.
    (tmp_path / "pool.jsonl").write_text(POOL + POOL.splitlines(True)[0], encoding="utf-8")
    assert load_plan(tmp_path / "tiny.kvs").vector_hash != pooled.vector_hash


def test_specs_without_the_new_keys_keep_their_vector_hash():
    """The vector hash of a spec that uses neither key has the payload it had before they
    existed (in hash format 2, which left the teacher template out), so artifacts built
    since (and the shipped vectors) stay valid."""
    plan = load_plan(ROOT / "specs" / "step_by_step.kvs")
    contrast = plan.contrast
    extract = asdict(plan.extract) | {"batch_size": None}
    extract.pop("prefix")
    old_payload = {
        "format": 2,
        "model": {"name": plan.model.name, "kind": plan.model.kind},
        "traces_sha256": contrast.traces_sha256,
        "pairs": contrast.pairs,
        "shots": contrast.shots,
        "selection": contrast.selection,
        "seed": contrast.seed,
        "system_prompt": contrast.system_prompt,
        "extract": extract,
    }
    text = json.dumps(old_payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plan.vector_hash == hashlib.sha256(text.encode()).hexdigest()


def test_the_shipped_query_pools_read_as_plain_questions():
    from kvsl.formats.questions import load_benchmark

    for name in ("gsm8k_train.jsonl", "csqa_train.jsonl"):
        examples = load_benchmark(ROOT / "specs" / "questions" / name, "plain")
        assert len(examples) == 400
        assert len({e.question for e in examples}) == 400
    csqa = load_benchmark(ROOT / "specs" / "questions" / "csqa_train.jsonl", "plain")
    assert all("\n\nChoices:\nA: " in e.question for e in csqa)
