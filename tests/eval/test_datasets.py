"""Benchmark loaders on tiny fixture files in each native format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvsl.formats.questions import (
    Choice,
    canonical_format,
    default_labels_path,
    detect_format,
    load_benchmark,
    multiple_choice_prompt,
    normalize_number,
)
from kvsl.lang.codes import CODES
from kvsl.lang.diagnostics import ExitCode, KvslError

FIXTURES = Path(__file__).parent / "fixtures"


def _code(err: pytest.ExceptionInfo[KvslError]) -> str:
    codes = [d.code for d in err.value.diagnostics]
    assert all(code in CODES for code in codes)
    return codes[0]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("arc.jsonl", "arc"),
        ("csqa.jsonl", "csqa"),
        ("piqa.jsonl", "piqa"),
        ("gsm8k.jsonl", "gsm8k"),
        ("plain.jsonl", "plain"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(FIXTURES / name) == fmt


def test_arc_prompt_and_letters() -> None:
    examples = load_benchmark(FIXTURES / "arc.jsonl", "arc")
    assert [e.id for e in examples] == [
        "Mercury_1",
        "NYSEDREGENTS_2",
        "Mercury_3",
        "Mercury_4",
        "NYSEDREGENTS_5",
    ]
    first = examples[0]
    assert first.question == (
        "Which skin surface will produce the most heat?\n\nChoices:\n"
        "A: dry palms\nB: wet palms\nC: palms covered with oil\nD: palms covered with lotion"
    )
    assert first.answer == "A" and first.source == "arc" and first.is_multiple_choice
    assert first.stem == "Which skin surface will produce the most heat?"


def test_arc_numeric_labels_become_letters_with_the_answer() -> None:
    examples = {e.id: e for e in load_benchmark(FIXTURES / "arc.jsonl")}
    numeric = examples["NYSEDREGENTS_2"]
    assert numeric.labels == ("A", "B", "C", "D")
    assert numeric.answer == "B"  # "2" → second choice → B
    assert dict((c.label, c.text) for c in numeric.choices)["B"] == "a copper wire"
    assert "B: a copper wire" in numeric.question and "2:" not in numeric.question
    three = examples["NYSEDREGENTS_5"]
    assert three.labels == ("A", "B", "C") and three.answer == "A"


def test_arc_three_and_five_choices() -> None:
    examples = {e.id: e for e in load_benchmark(FIXTURES / "arc.jsonl")}
    assert examples["Mercury_3"].labels == ("A", "B", "C")
    assert examples["Mercury_4"].labels == ("A", "B", "C", "D", "E")
    assert examples["Mercury_4"].answer == "D"


def test_csqa() -> None:
    examples = load_benchmark(FIXTURES / "csqa.jsonl", "commonsenseqa")
    assert [e.answer for e in examples] == ["A", "E"]
    assert examples[0].question.endswith("D: mall\nE: new york")
    assert examples[0].source == "csqa"


def test_csqa_unlabelled_split_is_an_error() -> None:
    with pytest.raises(KvslError) as err:
        load_benchmark(FIXTURES / "csqa_test_no_answers.jsonl")
    assert _code(err) == "KVS604"
    assert err.value.diagnostics[0].span.line == 1


def test_piqa_with_default_labels() -> None:
    examples = load_benchmark(FIXTURES / "piqa.jsonl")
    assert [e.answer for e in examples] == ["B", "A", "A"]
    assert examples[0].question == (
        "When boiling butter, when it's ready, you can\n\nChoices:\n"
        "A: Pour it onto a plate\nB: Pour it into a jar"
    )
    assert examples[0].id == "piqa-1" and examples[2].id == "piqa-3"


def test_piqa_explicit_labels_and_limit(tmp_path: Path) -> None:
    labels = tmp_path / "other.lst"
    labels.write_text("0\n1\n1\n")
    examples = load_benchmark(FIXTURES / "piqa.jsonl", "piqa", labels_path=labels, limit=2)
    assert [e.answer for e in examples] == ["A", "B"]


def test_piqa_label_count_mismatch() -> None:
    with pytest.raises(KvslError) as err:
        load_benchmark(FIXTURES / "piqa_short.jsonl", "piqa")
    assert _code(err) == "KVS605"
    assert err.value.diagnostics[0].span.line == 3


def test_piqa_missing_labels(tmp_path: Path) -> None:
    data = tmp_path / "valid.jsonl"
    data.write_text((FIXTURES / "piqa.jsonl").read_text())
    with pytest.raises(KvslError) as err:
        load_benchmark(data)
    assert _code(err) == "KVS605"
    assert err.value.exit_code == ExitCode.USAGE


def test_piqa_bad_label(tmp_path: Path) -> None:
    data = tmp_path / "valid.jsonl"
    data.write_text((FIXTURES / "piqa.jsonl").read_text())
    (tmp_path / "valid-labels.lst").write_text("0\n2\n1\n")
    with pytest.raises(KvslError) as err:
        load_benchmark(data)
    assert _code(err) == "KVS605" and err.value.diagnostics[0].span.line == 2


def test_gsm8k_final_numbers() -> None:
    examples = load_benchmark(FIXTURES / "gsm8k.jsonl")
    assert [e.answer for e in examples] == ["18", "120000", "-4"]
    assert examples[0].question.startswith("Janet's ducks") and not examples[0].choices
    assert examples[0].id == "gsm8k-1"


def test_gsm8k_without_final_number(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text(
        json.dumps({"question": "q", "answer": "a\n#### 1"})
        + "\n"
        + json.dumps({"question": "q2", "answer": "two"})
        + "\n"
    )
    with pytest.raises(KvslError) as err:
        load_benchmark(path, "gsm8k")
    assert _code(err) == "KVS606" and err.value.diagnostics[0].span.line == 2


def test_plain() -> None:
    examples = load_benchmark(FIXTURES / "plain.jsonl")
    assert [e.id for e in examples] == ["p1", "plain-2", "p3"]
    assert [e.answer for e in examples] == ["42", "yes", "B"]
    assert examples[0].question == "What is 6 times 7?"
    assert examples[2].question == "Pick the fruit.\n\nChoices:\nA: carrot\nB: apple\nC: leek"


def test_invalid_json_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "answer": "#### 1"}\n\n{"question": "b", "answer":\n')
    with pytest.raises(KvslError) as err:
        load_benchmark(path, "gsm8k")
    assert _code(err) == "KVS602"
    diag = err.value.diagnostics[0]
    assert diag.span.path == str(path) and diag.span.line == 3


def test_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "arc.jsonl"
    path.write_text(json.dumps({"id": "x", "question": {"choices": []}, "answerKey": "A"}) + "\n")
    with pytest.raises(KvslError) as err:
        load_benchmark(path, "arc")
    assert _code(err) == "KVS603"


def test_answer_not_a_label(tmp_path: Path) -> None:
    record = {
        "id": "x",
        "question": {
            "stem": "s",
            "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}],
        },
        "answerKey": "C",
    }
    path = tmp_path / "arc.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(KvslError) as err:
        load_benchmark(path)
    assert _code(err) == "KVS604"


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(KvslError) as err:
        load_benchmark(tmp_path / "nope.jsonl", "arc")
    assert _code(err) == "KVS600" and err.value.exit_code == ExitCode.USAGE
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(KvslError) as err:
        load_benchmark(empty, "gsm8k")
    assert _code(err) == "KVS607"


def test_undetectable_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "hi"}\n')
    with pytest.raises(KvslError) as err:
        detect_format(path)
    assert _code(err) == "KVS601"
    with pytest.raises(KvslError) as err:
        canonical_format("mmlu")
    assert _code(err) == "KVS601"
    assert canonical_format("ARC-Challenge") == "arc"


def test_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "question": "q", "answer": "1"}\n{"id": "a", "question": "r", "answer": "2"}\n'
    )
    with pytest.raises(KvslError) as err:
        load_benchmark(path)
    assert _code(err) == "KVS608"


def test_limit_stops_before_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\nnot json\n')
    assert len(load_benchmark(path, "gsm8k", limit=1)) == 1


def test_helpers() -> None:
    assert normalize_number("$1,234.50") == "1234.5"
    assert normalize_number("3.0") == "3"
    assert normalize_number("007") == "7"
    assert normalize_number("-0.50") == "-0.5"
    assert normalize_number(".5") == "0.5"
    assert default_labels_path("a/valid.jsonl") == Path("a/valid-labels.lst")
    assert multiple_choice_prompt(" s ", [Choice("A", "x")]) == "s\n\nChoices:\nA: x"


@pytest.mark.skipif(
    not Path("/work/shared/data/benchmarks").exists(), reason="shared benchmark data absent"
)
def test_real_files_if_present() -> None:  # pragma: no cover - depends on the machine
    root = Path("/work/shared/data/benchmarks")
    assert len(load_benchmark(root / "arc_challenge/ARC-Challenge-Test.jsonl")) == 1172
    assert len(load_benchmark(root / "csqa/dev_rand_split.jsonl")) == 1221
    assert len(load_benchmark(root / "piqa/valid.jsonl")) == 1838
    assert len(load_benchmark(root / "gsm8k/test.jsonl")) == 1319
