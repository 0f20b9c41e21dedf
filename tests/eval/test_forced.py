"""The forced choice for unreadable multiple-choice answers: the model's label scores, kept
in the results cache, decided raw (`model`) or less the letter prior (`calibrated`)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from tiny_models import random_vectors

from kvsl.eval import forced as forced_module
from kvsl.eval.answers import extract_answer
from kvsl.eval.forced import MIN_CALIBRATION_ROWS, batch_prior, decide
from kvsl.eval.methods import Generator, cache_method, plain_method
from kvsl.eval.results_cache import ResultsCache
from kvsl.eval.runner import evaluate
from kvsl.formats.questions import load_benchmark
from kvsl.lang.plan import GenerationSettings

FIXTURES = Path(__file__).parent / "fixtures"
DECODE = GenerationSettings(max_new_tokens=5)


@pytest.fixture
def setup(tiny):
    model, tokenizer = tiny
    generator = Generator(model, tokenizer, batch_size=3)
    examples = [
        *load_benchmark(FIXTURES / "arc.jsonl"),
        *load_benchmark(FIXTURES / "csqa.jsonl", "csqa"),
        *load_benchmark(FIXTURES / "gsm8k.jsonl"),  # not multiple choice: never forced
    ]
    methods = [plain_method(), cache_method(random_vectors(model, scale=8.0), {1: (0.0, 6.0)})]
    return generator, examples, methods


def test_decide_removes_any_letter_prior() -> None:
    """Scores that are a letter prior plus what the response says decide, once calibrated,
    as the response alone would: for any prior, any signal, any number of labels."""
    rng = random.Random(0)
    for _ in range(200):
        labels = [chr(ord("A") + i) for i in range(rng.randint(2, 6))]
        prior = _normalised({label: rng.gauss(0, 3) for label in labels})
        signal = {label: rng.gauss(0, 1) for label in labels}
        scores = _normalised({label: prior[label] + signal[label] for label in labels})
        assert decide(scores, prior) == max(signal, key=signal.__getitem__)
        assert decide(scores) == max(scores, key=scores.__getitem__)
    assert decide(None) is None and decide({}) is None
    assert decide({"A": -1.0, "B": -1.0}) == "A"  # a tie goes to the first label
    # A prior for other labels (another label set) is not applied.
    assert decide({"A": -0.1, "B": -2.0}, {"A": -5.0, "C": -0.1}) == "A"


def test_batch_prior_undoes_a_bias_every_answer_shares() -> None:
    """Answers whose scores all lean to "A" (raw picks: all "A") are decided, once
    calibrated on themselves, mostly by what each answer adds: the class of the letter
    bias the embedded model shows after cut-off answers."""
    rng = random.Random(1)
    labels = ["A", "B", "C", "D", "E"]
    bias = {"A": 4.0, "B": 1.0, "C": 0.0, "D": 0.5, "E": -1.0}
    signals = [{label: rng.gauss(0, 1.5) for label in labels} for _ in range(400)]
    rows = [_normalised({k: bias[k] + s[k] for k in labels}) for s in signals]
    prior = batch_prior(rows)[tuple(labels)]
    raw = [decide(r) for r in rows]
    calibrated = [decide(r, prior) for r in rows]
    truth = [max(s, key=s.__getitem__) for s in signals]
    assert raw.count("A") > 0.6 * len(rows)
    agree = sum(c == t for c, t in zip(calibrated, truth, strict=True)) / len(rows)
    assert agree > 0.7 > sum(r == t for r, t in zip(raw, truth, strict=True)) / len(rows)
    assert max(calibrated.count(label) for label in labels) < 0.35 * len(rows)
    # Too few answers of one label set: no prior for it, so they are decided raw.
    assert batch_prior(rows[: MIN_CALIBRATION_ROWS - 1]) == {}
    assert set(batch_prior(rows[:MIN_CALIBRATION_ROWS])) == {tuple(labels)}


def test_label_scores_are_the_forced_choice_as_log_probabilities(setup) -> None:
    generator, examples, methods = setup
    mc = [e for e in examples if e.is_multiple_choice]
    responses = ["hmm", "it depends", "", "maybe the second", "no idea", "?", "x", "y"][: len(mc)]
    for method in methods:
        scores = generator.label_scores(
            method, [e.question for e in mc], responses, [e.labels for e in mc]
        )
        picks = generator.forced_choices(
            method, [e.question for e in mc], responses, [e.labels for e in mc]
        )
        for example, row, pick in zip(mc, scores, picks, strict=True):
            assert row is not None and list(row) == list(example.labels)
            assert math.isclose(sum(math.exp(v) for v in row.values()), 1.0, rel_tol=1e-5)
            assert pick == max(row, key=row.__getitem__)
        # One batch or many: the same scores (left padding changes nothing).
        one = Generator(generator.model, generator.tokenizer, batch_size=1).label_scores(
            method, [e.question for e in mc], responses, [e.labels for e in mc]
        )
        for a, b in zip(scores, one, strict=True):
            assert a is not None and b is not None
            assert all(math.isclose(a[k], b[k], abs_tol=1e-4) for k in a)


def _forced_picks(result, examples) -> dict[tuple[str, str], str]:
    by_id = {e.id: e for e in examples}
    return {
        (name, o.example_id): o.extracted.answer
        for name, outcomes in result.outcomes.items()
        for o in outcomes
        if by_id[o.example_id].is_multiple_choice and o.extracted.forced
    }


def test_calibrated_picks_are_the_stored_scores_less_the_methods_own_prior(
    setup, tmp_path: Path, monkeypatch
) -> None:
    generator, examples, methods = setup
    monkeypatch.setattr(forced_module, "MIN_CALIBRATION_ROWS", 2)  # the fixture is small
    path = tmp_path / "results.jsonl"
    raw = evaluate(generator, methods, examples, DECODE, cache=ResultsCache(path))
    calibrated = evaluate(
        generator, methods, examples, DECODE, cache=ResultsCache(path), forced="calibrated"
    )
    assert calibrated.generated == 0  # the same responses, decided again
    records = [json.loads(line) for line in path.read_text().splitlines()]
    by_key = {(r["method"], r["example_id"]): r for r in records}
    forced_raw, forced_cal = _forced_picks(raw, examples), _forced_picks(calibrated, examples)
    assert forced_raw and set(forced_raw) == set(forced_cal)
    for method in methods:
        # The prior, computed here on its own: this method's unreadable answers' scores.
        mine = [r for r in records if r["method"] == method.name and r["forced_scores"]]
        assert len(mine) >= 2
        priors = batch_prior([r["forced_scores"] for r in mine])
        for record in mine:
            key = (method.name, record["example_id"])
            scores = record["forced_scores"]
            assert record["forced_model"] == forced_raw[key] == decide(scores)
            assert forced_cal[key] == decide(scores, priors.get(tuple(scores)))
    # Answers some rule could read keep no scores: nothing was forced.
    example_of = {e.id: e for e in examples}
    for record in records:
        example = example_of[record["example_id"]]
        readable = not (
            example.is_multiple_choice and extract_answer(example, record["response"]).forced
        )
        assert (record["forced_scores"] is None) == readable
    assert by_key


def test_without_enough_answers_calibrated_is_the_models_pick(setup, tmp_path: Path) -> None:
    generator, examples, methods = setup
    path = tmp_path / "results.jsonl"
    raw = evaluate(generator, methods, examples, DECODE, cache=ResultsCache(path))
    calibrated = evaluate(
        generator, methods, examples, DECODE, cache=ResultsCache(path), forced="calibrated"
    )
    assert len(_forced_picks(raw, examples)) < MIN_CALIBRATION_ROWS * len(methods)
    assert _forced_picks(calibrated, examples) == _forced_picks(raw, examples)


def test_old_cache_records_get_scores_without_generating(
    setup, tmp_path: Path, monkeypatch
) -> None:
    """Records written before scores were kept gain them by forward passes alone; the
    calibrated picks are those of a cache that kept them from the start."""
    generator, examples, methods = setup
    monkeypatch.setattr(forced_module, "MIN_CALIBRATION_ROWS", 2)
    fresh, old = tmp_path / "fresh.jsonl", tmp_path / "old.jsonl"
    expected = evaluate(
        generator, methods, examples, DECODE, cache=ResultsCache(fresh), forced="calibrated"
    )
    lines = [json.loads(line) for line in fresh.read_text().splitlines()]
    old.write_text(
        "".join(
            json.dumps({k: v for k, v in r.items() if k != "forced_scores"}) + "\n" for r in lines
        )
    )
    again = evaluate(
        generator, methods, examples, DECODE, cache=ResultsCache(old), forced="calibrated"
    )
    assert again.generated == 0
    assert _forced_picks(again, examples) == _forced_picks(expected, examples)
    reread = ResultsCache(old)
    for record in lines:
        kept = reread.get(record["key"])
        assert kept is not None and kept["response"] == record["response"]
        if record["forced_scores"] is None:
            assert kept["forced_scores"] is None
            continue
        assert all(
            math.isclose(kept["forced_scores"][k], v, abs_tol=1e-4)
            for k, v in record["forced_scores"].items()
        )


def test_overlap_ignores_the_models_stored_pick(setup, tmp_path: Path) -> None:
    generator, examples, methods = setup
    path = tmp_path / "results.jsonl"
    evaluate(generator, methods[:1], examples, DECODE, cache=ResultsCache(path))
    overlap = evaluate(
        generator, methods[:1], examples, DECODE, cache=ResultsCache(path), forced="overlap"
    )
    mc = {e.id for e in examples if e.is_multiple_choice}
    hows = {o.extracted.how for o in overlap.outcomes["plain"] if o.example_id in mc}
    assert hows and hows <= {"forced-overlap", "forced-hash"}


def test_answers_made_under_overlap_keep_scores_for_the_other_modes(setup, tmp_path: Path) -> None:
    generator, examples, methods = setup
    path = tmp_path / "results.jsonl"
    evaluate(generator, methods[:1], examples, DECODE, cache=ResultsCache(path), forced="overlap")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    scored = [r for r in records if r["forced_scores"]]
    assert scored and all(r["forced_model"] == decide(r["forced_scores"]) for r in scored)
    lines = len(records)
    model = evaluate(generator, methods[:1], examples, DECODE, cache=ResultsCache(path))
    assert model.generated == 0 and len(path.read_text().splitlines()) == lines
    picks = _forced_picks(model, examples)
    assert picks == {("plain", r["example_id"]): r["forced_model"] for r in scored}


def _normalised(values: dict[str, float]) -> dict[str, float]:
    total = math.log(sum(math.exp(v) for v in values.values()))
    return {k: v - total for k, v in values.items()}
