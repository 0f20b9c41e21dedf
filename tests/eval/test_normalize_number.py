"""Gold-answer cleaning (`kvsl.formats.questions.normalize_number`) against the shared answer reader.

`normalize_number` could be a thin wrapper over `kvsl.base.answers` (`canonical_number` of
`number_value`) only if both wrote every gold answer the same way. They agree on every
gold answer of the fixtures and of GSM8K (train and test), but not on every string a
loader can pass in: the tables below pin both sides, so a change to either is seen.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kvsl.base.answers import canonical_number, number_value
from kvsl.formats.questions import load_benchmark, normalize_number

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_GSM8K = Path("/work/shared/data/benchmarks/gsm8k")
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)  # as in kvsl.formats.questions


def _shared(text: str) -> str | None:
    value = number_value(text)
    return canonical_number(value) if value is not None else None


AGREE = [
    "18", "-3", "0", "-0", "+5", "007", "1,234", "1,000,000", "5,000.00", "0.50", "-0.50",
    ".5", "-.5", "3.0", "10.000", "12.50", "18.", "1.", "$1,234.50", "-$5", "$ 5", "€5",
    "£7.00", "120,000",
]

# Where the two differ: (gold text, normalize_number, shared reader, why).
DIFFER = [
    ("12,5", "125", None, "the loader drops every comma; the reader groups only in threes"),
    ("1,2345", "12345", None, "the loader drops every comma; the reader groups only in threes"),
    ("1,23,456", "123456", None, "the loader drops every comma; the reader groups only in threes"),
    (",5", "5", None, "the loader drops every comma"),
    ("$-5", "-5", None, "the loader drops currency anywhere; the reader wants the sign first"),
    ("3/4", "3/4", "0.75", "the reader reads fractions; the loader leaves them (GSM8K: KVS606)"),
    ("50%", "50%", "50", "the reader drops `%`; the loader leaves it (GSM8K: KVS606)"),
    ("−3", "−3", "-3", "the reader reads U+2212 as minus; the loader does not (GSM8K: KVS606)"),
    ("–5", "–5", "-5", "the reader reads an en dash as minus; the loader does not"),
    ("- 5", "- 5", "-5", "the reader allows a space after the minus; the loader does not"),
]


@pytest.mark.parametrize("text", AGREE)
def test_ordinary_gold_answers_are_written_alike(text: str) -> None:
    assert normalize_number(text) == _shared(text)


@pytest.mark.parametrize(("text", "loader", "reader", "why"), DIFFER, ids=[r[0] for r in DIFFER])
def test_where_the_loader_and_the_reader_differ(
    text: str, loader: str, reader: str | None, why: str
) -> None:
    assert why
    assert normalize_number(text) == loader
    assert _shared(text) == reader


def test_fixture_gold_answers_are_canonical_for_the_reader() -> None:
    numeric = [
        e.answer
        for name, fmt in (("gsm8k.jsonl", "gsm8k"), ("plain.jsonl", "plain"))
        for e in load_benchmark(FIXTURES / name, fmt)
        if not e.choices and number_value(e.answer) is not None
    ]
    assert len(numeric) == 4  # three GSM8K answers and the plain file's 42
    assert all(_shared(answer) == answer for answer in numeric)


@pytest.mark.skipif(not SHARED_GSM8K.exists(), reason="shared benchmark data absent")
def test_every_gsm8k_gold_answer_is_written_alike() -> None:
    golds = set()
    for path in sorted(SHARED_GSM8K.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                match = _GSM8K_FINAL.search(json.loads(line)["answer"])
                assert match is not None
                golds.add(match.group(1))
    assert len(golds) > 500
    assert [g for g in sorted(golds) if normalize_number(g) != _shared(g)] == []
