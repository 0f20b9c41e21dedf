"""The paper's recipe on tiny models: a query pool, k up to the traces, nearest demos as
the paper selects them, and the prefix variant in extraction and generation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_TRACES, make_plan

from kvsl.engine.contrast import build_contrast_pairs, select_demos, tokenize_pairs
from kvsl.engine.extract import _progress, extract_vectors
from kvsl.formats.traces import Trace
from kvsl.lang.diagnostics import KvslError

POOL = [
    "What is 3 + 3?",
    "What is 6 * 2?",
    "Is snow cold?",
    "What color is grass?",
    "What is 12 - 5?",
    "Do birds fly?",
    "What is 8 / 2?",
    "Which is bigger, 7 or 4?",
    "What is 1 + 1?",
    "Is the sun hot?",
    "What is 5 * 5?",
    "Do cats swim?",
]


@pytest.fixture
def pool(tmp_path) -> Path:
    """A plain-format query pool of 12 questions (more than the 8 tiny traces)."""
    path = tmp_path / "pool.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "question": q, "answer": "x"}) + "\n"
            for i, q in enumerate(POOL)
        ),
        encoding="utf-8",
    )
    return path


def test_a_query_pool_lets_n_exceed_the_traces_and_k_reach_them(tiny_traces, pool):
    plan = make_plan(tiny_traces, pairs=12, shots=8, questions=pool)
    pairs = build_contrast_pairs(plan)
    assert len(pairs) == 12
    assert sorted(p.target.question for p in pairs) == sorted(POOL)  # N distinct pool targets
    trace_questions = {t["question"] for t in TINY_TRACES}
    for pair in pairs:
        assert pair.target.steps == ()  # a pool question, not a trace
        assert len(pair.demos) == 8 and {d.question for d in pair.demos} == trace_questions
        assert pair.positive[-1].content == pair.target.question


@pytest.mark.parametrize(("pairs", "shots"), [(13, 2), (4, 9)])
def test_a_pool_too_small_or_too_few_traces_is_kvs306(tiny_traces, pool, pairs, shots):
    with pytest.raises(KvslError) as caught:
        build_contrast_pairs(make_plan(tiny_traces, pairs=pairs, shots=shots, questions=pool))
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS306"
    assert "has 12" in diagnostic.message and "has 8" in diagnostic.message


def test_a_pool_question_equal_to_a_trace_never_gets_that_trace_as_demo(tiny_traces, tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps({"question": "What is 2 + 3?", "answer": "5"}) + "\n", "utf-8")
    (pair,) = build_contrast_pairs(make_plan(tiny_traces, pairs=1, shots=7, questions=path))
    assert "What is 2 + 3?" not in {d.question for d in pair.demos}


def _paper_select(sims: torch.Tensor, k: int) -> list[list[int]]:
    """The paper's `select_similar_examples` (src/data/contrastive_dataset.py): distances
    1 - cos, `argsort`, drop the example itself, keep the first k."""
    chosen = []
    for index in range(sims.shape[0]):
        closest = (1 - sims[index]).numpy().argsort()
        chosen.append([int(i) for i in closest if i != index][:k])
    return chosen


def test_nearest_matches_the_papers_selection():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(20, 8, generator=generator), dim=-1)
    sims = embeddings @ embeddings.T  # distinct questions: no ties
    traces = [Trace(f"q{i}", ("s",), "a") for i in range(20)]
    ours = dict(select_demos(traces, 20, 10, "nearest", 0, lambda: sims))
    paper = _paper_select(sims, 10)
    assert all(ours[i] == paper[i] for i in range(20))  # same demos, most similar first


def test_nearest_with_a_pool_ranks_traces_against_each_target(tiny_traces, pool, monkeypatch):
    import kvsl.engine.embed as embed

    monkeypatch.setattr(embed, "embedder_dir", lambda: None)  # TF-IDF: known ranking
    plan = make_plan(tiny_traces, pairs=12, shots=2, selection="nearest", questions=pool)
    pairs = {p.target.question: p for p in build_contrast_pairs(plan, on_warning=lambda d: None)}
    assert pairs["Which is bigger, 7 or 4?"].demos[0].question == "Which is bigger, 5 or 2?"
    assert pairs["What color is grass?"].demos[0].question == "What color is the sky?"
    sims, method = embed.cross_similarity(["red apple"], ["blue sky", "red apple pie"])
    assert method == "tfidf" and sims.shape == (1, 2) and sims[0, 1] > sims[0, 0]


def test_ten_shots_build_and_extract(tiny_loaded_llama, tmp_path):
    traces = tmp_path / "many.jsonl"
    traces.write_text(
        "".join(
            json.dumps({"question": f"What is {i} + {i}?", "steps": [f"{i} and {i}."], "answer": str(2 * i)})
            + "\n"
            for i in range(12)
        ),
        encoding="utf-8",
    )
    plan = make_plan(traces, pairs=4, shots=10)
    vectors = extract_vectors(tiny_loaded_llama, plan, progress=False)
    assert vectors.manifest["shots"] == 10
    assert all(len(p.demos) == 10 for p in build_contrast_pairs(plan))


PREFIX = "Let's think step by step."


def test_prefix_ends_both_prompts_after_the_generation_prompt(tiny_traces, tiny_llama):
    _, tokenizer = tiny_llama
    pairs = build_contrast_pairs(make_plan(tiny_traces, pairs=2, shots=1))
    plain = tokenize_pairs(pairs, tokenizer)
    prefixed = tokenize_pairs(pairs, tokenizer, PREFIX)
    suffix = tuple(tokenizer.encode(PREFIX, add_special_tokens=False))
    for a, b in zip(plain, prefixed, strict=True):
        assert b.positive == a.positive + suffix and b.negative == a.negative + suffix


def test_prefix_changes_the_vectors_and_is_recorded(tiny_loaded_llama, tiny_traces, tmp_path):
    from kvsl.engine.artifact import load_artifact, save_artifact

    bare = make_plan(tiny_traces, pairs=3, shots=1)
    with_prefix = make_plan(tiny_traces, pairs=3, shots=1, prefix=PREFIX)
    assert bare.vector_hash != with_prefix.vector_hash
    assert bare.plan_hash != with_prefix.plan_hash
    a = extract_vectors(tiny_loaded_llama, bare, progress=False)
    b = extract_vectors(tiny_loaded_llama, with_prefix, progress=False)
    assert not torch.equal(a.values[1], b.values[1])
    assert b.prefix == PREFIX and b.manifest["position"]["prefix"] == PREFIX  # type: ignore[index]
    loaded = load_artifact(save_artifact(b, tmp_path / "b.safetensors"))
    assert loaded.prefix == PREFIX
    assert load_artifact(save_artifact(a, tmp_path / "a.safetensors")).prefix == ""


def test_generation_with_prefixed_vectors_starts_the_answer_with_the_prefix(tiny_llama):
    import dataclasses

    from tiny_models import random_vectors

    import kvsl
    from kvsl.engine.generate import chat_prompt
    from kvsl.engine.offline import generate_texts

    model, tokenizer = tiny_llama
    vectors = dataclasses.replace(random_vectors(model), prefix=PREFIX)
    offset = tokenizer.encode(vectors.offset_token, add_special_tokens=False)[0]
    expected = chat_prompt(tokenizer, "Why?") + tokenizer.encode(PREFIX, add_special_tokens=False)
    inputs = kvsl.steering_inputs(tokenizer, "Why?", vectors)
    assert inputs["input_ids"][0].tolist() == [*expected, offset]
    # Coefficient 0 with prefixed vectors is plain generation from T + prefix + o, exactly.
    steered = kvsl.generate(model, tokenizer, "Why?", vectors, coefficients={1: (0.0, 0.0)},
                            max_new_tokens=6)  # fmt: skip
    from kvsl.engine.generate import GenerationSettings

    plain = generate_texts(
        model, tokenizer, [expected], settings=GenerationSettings(max_new_tokens=6), offset_id=offset
    )
    assert steered == plain


def test_eval_cache_method_uses_the_vectors_prefix(tiny_llama):
    import dataclasses

    from tiny_models import random_vectors

    from kvsl.engine.generate import chat_prompt
    from kvsl.eval.methods import Generator, cache_method, plain_method

    model, tokenizer = tiny_llama
    vectors = dataclasses.replace(random_vectors(model), prefix=PREFIX)
    method = cache_method(vectors, {1: (0.0, 1.0)})
    generator = Generator(model, tokenizer)
    suffix = tokenizer.encode(PREFIX, add_special_tokens=False)
    assert generator.prompt_ids("Q?", method) == chat_prompt(tokenizer, "Q?") + suffix
    assert generator.prompt_ids("Q?", plain_method()) == chat_prompt(tokenizer, "Q?")
    assert method.settings()["prefix"] == PREFIX
    bare = cache_method(dataclasses.replace(vectors, prefix=""), {1: (0.0, 1.0)})
    assert "prefix" not in bare.settings()  # unchanged cache keys for vectors without one


def test_progress_shows_its_description_and_total():
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    with _progress(True, console, 7, "extracting my-style") as done:
        for count in range(1, 8):
            done(count)
    text = out.getvalue()
    assert "extracting my-style" in text and "7/7" in text
    with _progress(False, console, 7, "quiet") as done:
        done(3)  # a no-op, not an error
