"""Fuzzing question files: the benchmark files `kvsl eval`, `kvsl tune --dev` and a spec's
`questions` pool read (GSM8K, ARC, CommonsenseQA, PIQA with its labels file, plain JSONL).

Any bytes, read with any format or with the format detected, give examples or a KvslError
whose diagnostics are registered codes located in the file, never another exception; plain
records read back as written. `KVSL_FUZZ_EXAMPLES=N` runs N examples per property.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fuzz_settings import fuzz
from hostile_data import assert_coded, json_values, lines_file, mutated, records, texts
from hypothesis import given
from hypothesis import strategies as st

from kvsl.formats.examples import LETTERS
from kvsl.formats.questions import FORMATS, Example, load_benchmark
from kvsl.lang.diagnostics import KvslError

FOLDER = Path(tempfile.mkdtemp(prefix="kvsl-question-fuzz-"))
FIXTURES = Path(__file__).resolve().parents[1] / "eval" / "fixtures"
SAMPLES = [p.read_bytes()[:4000] for p in sorted(FIXTURES.glob("*.jsonl"))]

labels = st.one_of(texts(3), st.integers(-3, 30), st.sampled_from(list("ABCDE1234")))
choice = st.one_of(texts(10), st.fixed_dictionaries({"label": labels, "text": texts(10)}),
                   json_values(3))  # fmt: skip
choices = st.one_of(st.lists(choice, max_size=5), json_values(4))
question_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(texts(8), st.integers(), st.booleans()),
    "question": st.one_of(
        texts(),
        records({"stem": texts(), "choices": choices, "question_concept": texts(5)}),
    ),
    "answer": st.one_of(texts(12), st.integers(), st.floats(), st.just("x\n#### 1,234")),
    "answerKey": labels,
    "choices": choices,
    "goal": texts(),
    "sol1": texts(),
    "sol2": texts(),
}
question_files = st.one_of(
    lines_file(records(question_fields)),
    st.sampled_from(SAMPLES).flatmap(mutated),
)
label_files = st.one_of(
    st.lists(st.sampled_from(["0", "1", "0", "1", "2", "", " 1", "١", "x"]), max_size=6).map(
        lambda xs: "\n".join(xs).encode()
    ),
    st.binary(max_size=12),
)


@fuzz(80)
@given(question_files, st.sampled_from([None, *FORMATS]), label_files, st.sampled_from([None, 0, 2]))
def test_any_question_file_gives_examples_or_located_codes(
    data: bytes, fmt: str | None, labels_data: bytes, limit: int | None
) -> None:
    path = FOLDER / "q.jsonl"
    path.write_bytes(data)
    (FOLDER / "q-labels.lst").write_bytes(labels_data)
    try:
        examples = load_benchmark(path, fmt, limit=limit)
    except KvslError as err:
        for name in (path, FOLDER / "q-labels.lst"):
            assert_coded(err.diagnostics, str(name), name.read_bytes())
        return
    assert limit is None or len(examples) <= limit
    assert len({e.id for e in examples}) == len(examples)
    for example in examples:
        assert example.question.strip() and example.answer and example.id
        if example.choices:
            assert example.answer in example.labels
            assert len(set(example.labels)) == len(example.labels)


@st.composite
def plain_records(draw: st.DrawFn) -> tuple[dict[str, Any], Example]:
    words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]),
                    min_size=1, max_size=15).map(str.strip).filter(bool)  # fmt: skip
    stem = draw(words)
    texts_ = draw(st.lists(words, min_size=2, max_size=5))
    if draw(st.booleans()):  # a multiple-choice record with lettered choices
        answer = LETTERS[draw(st.integers(0, len(texts_) - 1))]
        record = {"question": stem, "answer": answer, "choices": texts_}
        body = "\n".join(f"{LETTERS[i]}: {t}" for i, t in enumerate(texts_))
        return record, Example("", f"{stem}\n\nChoices:\n{body}", answer, (), stem, "plain")
    answer = draw(words.filter(lambda s: not any(c.isdigit() for c in s)))
    return {"question": stem, "answer": answer}, Example("", stem, answer, (), stem, "plain")


@fuzz(50)
@given(st.lists(plain_records(), min_size=1, max_size=4))
def test_plain_records_read_back_as_written(cases: list[tuple[dict[str, Any], Example]]) -> None:
    path = FOLDER / "plain.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r, _ in cases), encoding="utf-8")
    examples = load_benchmark(path, "plain")
    assert [(e.id, e.question, e.answer, e.stem) for e in examples] == [
        (f"plain-{i}", want.question, want.answer, want.stem)
        for i, (_, want) in enumerate(cases, start=1)
    ]
