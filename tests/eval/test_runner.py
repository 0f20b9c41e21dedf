"""The runner: batched, resumable evaluation, summaries, CAA choice, sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import random_vectors

from kvsl.eval.caa import extract_caa
from kvsl.eval.methods import Generator, cache_method, cot_method, plain_method
from kvsl.eval.results_cache import ResultsCache
from kvsl.eval.runner import check_settings, evaluate
from kvsl.eval.sweep import best_point, choose_caa, run_points
from kvsl.formats.questions import load_benchmark
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import GenerationSettings

DECODE = GenerationSettings(max_new_tokens=6)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def setup(tiny):
    model, tokenizer = tiny
    generator = Generator(model, tokenizer, batch_size=4)
    examples = load_benchmark(FIXTURES / "arc.jsonl") + load_benchmark(FIXTURES / "gsm8k.jsonl")
    methods = [plain_method(), cot_method(), cache_method(random_vectors(model), {1: (0.0, 4.0)})]
    return generator, examples, methods


def test_evaluate_resumes_from_the_cache(setup, tmp_path: Path) -> None:
    generator, examples, methods = setup
    path = tmp_path / "results.jsonl"
    seen: list[tuple[str, int, int]] = []
    first = evaluate(
        generator,
        methods,
        examples,
        DECODE,
        cache=ResultsCache(path),
        identity={"name": "tiny"},
        progress=lambda d, a, t: seen.append((d, a, t)),
    )
    assert first.generated == len(examples) * len(methods)
    assert len(path.read_text().splitlines()) == len(examples) * len(methods)
    assert {d for d, _, _ in seen} == {"plain", "cot", "cache"}
    second = evaluate(
        generator, methods, examples, DECODE, cache=ResultsCache(path), identity={"name": "tiny"}
    )
    assert second.generated == 0
    for name in first.methods:
        assert [o.response for o in first.outcomes[name]] == [
            o.response for o in second.outcomes[name]
        ]
        assert first.summary(name).accuracy == second.summary(name).accuracy
    # Other settings (another model identity, more tokens) are other cache entries.
    third = evaluate(
        generator,
        methods[:1],
        examples[:2],
        GenerationSettings(max_new_tokens=7),
        cache=ResultsCache(path),
        identity={"name": "tiny"},
    )
    assert third.generated == 2


def test_torn_cache_line_is_regenerated(setup, tmp_path: Path) -> None:
    generator, examples, methods = setup
    path = tmp_path / "results.jsonl"
    evaluate(generator, methods[:1], examples, DECODE, cache=ResultsCache(path))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # killed mid-write
    cache = ResultsCache(path)
    assert [w.code for w in cache.warnings] == ["KVS613", "KVS620"]  # and the line dropped
    again = evaluate(generator, methods[:1], examples, DECODE, cache=cache)
    assert again.generated == 1
    reread = ResultsCache(path)
    assert len(reread.records) == len(examples) and reread.warnings == []


def test_summaries(setup, tmp_path: Path) -> None:
    generator, examples, methods = setup
    result = evaluate(
        generator, methods, examples, DECODE, cache=ResultsCache(None), style="step-by-step"
    )
    plain, cot, cache = (result.summary(n) for n in ("plain", "cot", "cache"))
    assert plain.n == len(examples) and plain.versus_plain is None
    assert cot.versus_plain is not None and cot.versus_plain.n == len(examples)
    for s in (plain, cot, cache):
        assert 0 <= s.accuracy.rate <= 1 and s.accuracy.low <= s.accuracy.rate <= s.accuracy.high
        assert s.mean_tokens <= 6 and s.ms_per_token is not None and s.ms_per_token > 0
        assert s.style is not None and 0 <= s.style <= 1
        assert 0 <= s.forced_share <= 1
        json.dumps(s.to_dict())
    assert cache.settings["coefficients"] == [[1, 0.0, 4.0]]


def test_sampling_runs(setup) -> None:
    generator, examples, methods = setup
    decode = GenerationSettings(max_new_tokens=5, temperature=1.0, top_p=0.95, seed=3)
    result = evaluate(
        generator, methods[:2], examples[:4], decode, cache=ResultsCache(None), runs=2
    )
    summary = result.summary("cot")
    assert len(summary.run_accuracies) == 2 and summary.over_runs.n == 2
    assert summary.accuracy.n == 8
    runs = {o.run for o in result.outcomes["plain"]}
    assert runs == {0, 1}
    # Per-run seeds: sampled responses differ between runs for some example.
    by_run = [[o.response for o in result.outcomes["plain"] if o.run == r] for r in (0, 1)]
    assert by_run[0] != by_run[1]


def test_check_settings() -> None:
    check_settings(DECODE, 1, None)
    with pytest.raises(KvslError) as err:
        check_settings(GenerationSettings(top_p=1.5), 0, -1, runs=0)
    assert {d.code for d in err.value.diagnostics} == {"KVS612"}
    assert len(err.value.diagnostics) == 4


def test_choose_caa_and_sweep_points(setup, tmp_path: Path) -> None:
    generator, examples, _ = setup
    model, tokenizer = generator.model, generator.tokenizer
    from kvsl.engine.generate import chat_prompt

    pairs = [
        (chat_prompt(tokenizer, "Think: " + q), chat_prompt(tokenizer, q)) for q in ("a?", "b?")
    ]
    vectors = extract_caa(model, pairs)
    dev = examples[:3]
    cache = ResultsCache(tmp_path / "r.jsonl")
    layer, mult, points = choose_caa(
        generator, vectors, [1, 2], [0.0, 4.0], dev, DECODE, cache=cache
    )
    assert (layer, mult) in {(1, 0.0), (1, 4.0), (2, 0.0), (2, 4.0)}
    assert len(points) == 4
    best = max(points, key=lambda p: p.accuracy.rate)
    assert best.accuracy.rate == max(p.accuracy.rate for p in points)
    vec = random_vectors(model)
    sweep = run_points(
        generator,
        "value",
        [(v, cache_method(vec, {1: (0.0, v)}, name=f"cache c_v={v:g}")) for v in (0.0, 2.0)],
        dev,
        DECODE,
        cache=cache,
    )
    assert [p.value for p in sweep] == [0.0, 2.0]
    assert best_point(sweep).value in {0.0, 2.0}


def test_a_full_batch_leaves_the_results_unchanged(setup, tmp_path: Path, monkeypatch) -> None:
    """The records `evaluate` stores are the static batches' (the cache keys too, so old
    caches stay valid), and each answer is saved as it finishes."""
    generator, examples, methods = setup
    kept = ResultsCache(tmp_path / "kept.jsonl")
    evaluate(generator, methods, examples, DECODE, cache=kept, identity={"name": "tiny"})
    monkeypatch.setattr("kvsl.engine.offline.continuous_supported", lambda _: False)
    static = ResultsCache(tmp_path / "static.jsonl")
    evaluate(Generator(generator.model, generator.tokenizer, batch_size=1), methods, examples,
             DECODE, cache=static, identity={"name": "tiny"})  # fmt: skip

    def answers(cache: ResultsCache) -> dict[str, tuple]:
        return {k: (r["response"], r["tokens"], r["forced_model"]) for k, r in cache.records.items()}

    assert answers(kept) == answers(static) and len(kept.records) == len(examples) * len(methods)


def test_groups_of_decodings_are_answered_in_one_queue(setup, tmp_path: Path, queues) -> None:
    """`evaluate_groups`: every group's missing answers share one queue; each group's result
    is what `evaluate` gives it alone; a response two groups share is generated once; the
    baseline's progress label carries its group's label."""
    from kvsl.eval.runner import EvalGroup, evaluate_groups

    generator, examples, methods = setup
    other = GenerationSettings(max_new_tokens=5, repetition_penalty=1.3)
    groups = [
        EvalGroup(methods, DECODE, label="a"),
        EvalGroup([plain_method(), methods[2]], other, label="b"),
        EvalGroup([plain_method()], DECODE, label="c"),  # the same answers as group a's plain
    ]
    seen: set[str] = set()
    together = evaluate_groups(
        generator, groups, examples, cache=ResultsCache(tmp_path / "joint.jsonl"),
        progress=lambda d, a, t: seen.add(d),
    )  # fmt: skip
    n = len(examples)
    assert queues == [n * (len(methods) + 2)]
    assert [r.generated for r in together] == [n * len(methods), 2 * n, 0]
    assert {"plain a", "plain b", "cot", "cache"} <= seen
    for group, joint in zip(groups, together, strict=True):
        alone = evaluate(
            generator, group.methods, examples, group.decode,
            cache=ResultsCache(tmp_path / f"alone-{group.label}.jsonl"),
        )  # fmt: skip
        for name in alone.methods:
            assert [o.response for o in joint.outcomes[name]] == [
                o.response for o in alone.outcomes[name]
            ]
            assert joint.summary(name).accuracy == alone.summary(name).accuracy
