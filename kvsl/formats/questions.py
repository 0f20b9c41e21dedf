"""Benchmark loaders: GSM8K, ARC, CommonsenseQA, PIQA and plain `{question, answer}` JSONL.

Every loader reads the benchmark's *native* file format (nothing is downloaded) and returns
`Example`s whose `question` is the exact user turn shown to the model:

- GSM8K: the question text as is; `answer` is the number after `#### ` with thousands
  separators removed (`"#### 1,234"` → `"1234"`).
- ARC, CommonsenseQA, PIQA (multiple choice), as in the paper::

      {stem}

      Choices:
      A: {text}
      B: {text}

  `answer` is a choice label. ARC items labelled `"1".."4"` (about 2% of ARC-Challenge)
  are relabelled by position to `A, B, C, ...`, and their answer key with them, so every
  multiple-choice prompt and every answer uses letters and one extraction cascade serves
  all benchmarks. PIQA's `sol1`/`sol2` become `A`/`B`, its 0/1 label `A`/`B`.
- plain: one JSON object per line with a `question` and an `answer` (string or number),
  optionally an `id` and `choices` (a list of strings, labelled A, B, ... in order, or a
  list of `{"label", "text"}` objects); with choices the prompt gets the `Choices:` block.

Bad input is a `KvslError` carrying KVS6xx diagnostics located at `file:line`. No torch
is imported here: the teacher uses these loaders too.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span

FORMATS = ("gsm8k", "arc", "csqa", "piqa", "plain")
MULTIPLE_CHOICE_FORMATS = frozenset({"arc", "csqa", "piqa"})
LETTERS = string.ascii_uppercase

# Names users may type for a format (`--benchmark arc-challenge`, `commonsenseqa`, ...).
FORMAT_ALIASES: dict[str, str] = {
    "gsm8k": "gsm8k",
    "gsm": "gsm8k",
    "arc": "arc",
    "arc-challenge": "arc",
    "arc_challenge": "arc",
    "arc-c": "arc",
    "csqa": "csqa",
    "commonsenseqa": "csqa",
    "commonsense_qa": "csqa",
    "piqa": "piqa",
    "plain": "plain",
    "jsonl": "plain",
}

_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Choice:
    """One answer option: `Choice("A", "dry palms")`."""

    label: str
    text: str


@dataclass(frozen=True)
class Example:
    """One benchmark item, ready to be shown to a model.

    `question` is the full user turn (for multiple choice it includes the `Choices:`
    block); `stem` is the bare question; `answer` is a choice label (`"C"`) or a number
    string (`"18"`); `choices` is empty for open-answer items; `source` is the format name
    (`"arc"`, `"gsm8k"`, ...).
    """

    id: str
    question: str
    answer: str
    choices: tuple[Choice, ...]
    stem: str
    source: str

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.choices)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.choices)


def multiple_choice_prompt(stem: str, choices: tuple[Choice, ...] | list[Choice]) -> str:
    """The paper's multiple-choice prompt.

    >>> multiple_choice_prompt("Which?", [Choice("A", "x"), Choice("B", "y")])
    'Which?\\n\\nChoices:\\nA: x\\nB: y'
    """
    lines = "\n".join(f"{c.label}: {c.text}" for c in choices)
    return f"{stem.strip()}\n\nChoices:\n{lines}"


def normalize_number(text: str) -> str:
    """A GSM8K-style final answer as a canonical number string.

    Removes thousands separators, currency and surrounding spaces, drops trailing zeros of
    decimals (`"12.50"` → `"12.5"`, `"3.0"` → `"3"`).

    >>> normalize_number("$1,234.50")
    '1234.5'
    >>> normalize_number("-7")
    '-7'
    """
    cleaned = text.strip().replace(",", "").replace("$", "").replace("€", "").replace("£", "")
    cleaned = cleaned.rstrip(".").strip()
    if re.fullmatch(r"[-+]?(\d+(\.\d+)?|\.\d+)", cleaned):
        sign = "-" if cleaned.startswith("-") else ""
        body = cleaned.lstrip("+-")
        if "." in body:
            body = body.rstrip("0").rstrip(".")
        body = body.lstrip("0") or "0"
        if body.startswith("."):
            body = "0" + body
        return "0" if body == "0" else sign + body
    return cleaned


# --- errors ------------------------------------------------------------------------------


def _line_span(path: str, line_no: int, offset: int, text: str) -> Span:
    return Span(path, offset, offset + len(text), line_no, 1, line_no, len(text) + 1)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    offset: int
    text: str
    span: Span


def _read_lines(path: Path) -> Iterator[_Line]:
    """Non-blank lines of a UTF-8 text file with their spans (KVS600 if unreadable)."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KvslError.one(
            "KVS600",
            f"benchmark file `{shown}` does not exist",
            Span.whole_file(shown),
            help="pass the path of a local benchmark file; kvsl downloads nothing",
            exit_code=ExitCode.USAGE,
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise KvslError.one(
            "KVS600",
            f"benchmark file `{shown}` cannot be read: {err}",
            Span.whole_file(shown),
            help="benchmark files are UTF-8 text, one JSON record per line",
            exit_code=ExitCode.USAGE,
        ) from None
    offset = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.strip():
            yield _Line(number, offset, line, _line_span(shown, number, offset, line))
        offset += len(raw) + 1


def _parse_json(line: _Line) -> dict:
    try:
        record = json.loads(line.text)
    except json.JSONDecodeError as err:
        raise KvslError.one(
            "KVS602",
            f"line {line.number} is not valid JSON: {err.msg}",
            Span(
                line.span.path,
                line.offset + err.pos,
                line.offset + err.pos,
                line.number,
                err.colno,
                line.number,
                err.colno,
            ),
            help="each line of a benchmark file must be one JSON object",
        ) from None
    if not isinstance(record, dict):
        raise KvslError.one(
            "KVS602",
            f"line {line.number} is JSON but not an object",
            line.span,
            help="each line of a benchmark file must be one JSON object",
        )
    return record


def _missing(line: _Line, fmt: str, what: str, expected: str) -> KvslError:
    return KvslError.one(
        "KVS603",
        f"{fmt} record on line {line.number} has no valid {what}",
        line.span,
        help=f"a {fmt} record looks like {expected}",
    )


_ARC_SHAPE = '{"id": ..., "question": {"stem": ..., "choices": [{"text": ..., "label": "A"}]}, "answerKey": "A"}'
_PIQA_SHAPE = '{"goal": ..., "sol1": ..., "sol2": ...} with a labels file of 0/1 lines'
_GSM8K_SHAPE = '{"question": ..., "answer": "... #### 42"}'
_PLAIN_SHAPE = '{"question": ..., "answer": ...} (optional "id", "choices")'


def _string(record: dict, key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _choice_list(raw: object) -> list[tuple[str, str]] | None:
    """`[{"label", "text"}]` or `["text", ...]` → [(label, text)], None if malformed."""
    if not isinstance(raw, list) or len(raw) < 2:
        return None
    out: list[tuple[str, str]] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            if index >= len(LETTERS):
                return None
            out.append((LETTERS[index], item))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            label = item.get("label", LETTERS[index] if index < len(LETTERS) else None)
            if not isinstance(label, str | int) or isinstance(label, bool):
                return None
            out.append((str(label).strip(), item["text"]))
        else:
            return None
    return out


def _relabel(pairs: list[tuple[str, str]], answer: str) -> tuple[tuple[Choice, ...], str] | None:
    """Map numeric labels ("1".."n") to letters by position; keep letters as they are.

    Returns None when `answer` is not one of the labels.
    """
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels) or len(labels) > len(LETTERS):
        return None
    if all(label.isdigit() for label in labels):
        mapping = {label: LETTERS[i] for i, label in enumerate(labels)}
    else:
        mapping = {label: label for label in labels}
    if answer not in mapping:
        return None
    choices = tuple(Choice(mapping[label], text.strip()) for label, text in pairs)
    return choices, mapping[answer]


def _bad_answer(line: _Line, answer: object, labels: list[str]) -> KvslError:
    return KvslError.one(
        "KVS604",
        f"answer {answer!r} on line {line.number} is not one of the choice labels "
        f"{', '.join(labels)}",
        line.span,
        help="the answer key must be the label of one of the record's choices",
    )


def _example_id(path: Path, line: _Line, record: dict) -> str:
    given = record.get("id")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given).strip():
        return str(given)
    return f"{path.stem}-{line.number}"


def _load_arc_like(path: Path, line: _Line, record: dict, fmt: str) -> Example:
    question = record.get("question")
    shape = _ARC_SHAPE
    if not isinstance(question, dict) or not _string(question, "stem"):
        raise _missing(line, fmt, "`question.stem`", shape)
    pairs = _choice_list(question.get("choices"))
    if pairs is None:
        raise _missing(line, fmt, "`question.choices` list", shape)
    key = record.get("answerKey")
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise KvslError.one(
            "KVS604",
            f"{fmt} record on line {line.number} has no `answerKey`",
            line.span,
            help="unlabelled splits (such as CommonsenseQA's test file) cannot be scored; "
            "use the dev split as the test set",
        )
    relabelled = _relabel(pairs, str(key).strip())
    if relabelled is None:
        raise _bad_answer(line, key, [label for label, _ in pairs])
    choices, answer = relabelled
    stem = question["stem"].strip()
    return Example(
        id=_example_id(path, line, record),
        question=multiple_choice_prompt(stem, choices),
        answer=answer,
        choices=choices,
        stem=stem,
        source=fmt,
    )


def _load_gsm8k(path: Path, line: _Line, record: dict) -> Example:
    question = _string(record, "question")
    solution = _string(record, "answer")
    if question is None or solution is None:
        raise _missing(line, "gsm8k", "`question` and `answer`", _GSM8K_SHAPE)
    match = _GSM8K_FINAL.search(solution)
    answer = normalize_number(match.group(1)) if match else ""
    if not match or not re.fullmatch(r"-?\d+(\.\d+)?", answer):
        raise KvslError.one(
            "KVS606",
            f"gsm8k answer on line {line.number} does not end in `#### <number>`",
            line.span,
            help="GSM8K solutions end with a line `#### 42`; for other question files use "
            "`--benchmark plain`",
        )
    return Example(
        id=_example_id(path, line, record),
        question=question.strip(),
        answer=answer,
        choices=(),
        stem=question.strip(),
        source="gsm8k",
    )


def _load_plain(path: Path, line: _Line, record: dict) -> Example:
    question = _string(record, "question")
    raw_answer = record.get("answer")
    if isinstance(raw_answer, bool) or not isinstance(raw_answer, str | int | float):
        raw_answer = None
    if question is None or raw_answer is None or not str(raw_answer).strip():
        raise _missing(line, "plain", "`question` and `answer`", _PLAIN_SHAPE)
    answer = str(raw_answer).strip()
    stem = question.strip()
    choices: tuple[Choice, ...] = ()
    prompt = stem
    if "choices" in record:
        pairs = _choice_list(record["choices"])
        if pairs is None:
            raise _missing(line, "plain", "`choices` list", _PLAIN_SHAPE)
        relabelled = _relabel(pairs, answer)
        if relabelled is None:
            raise _bad_answer(line, raw_answer, [label for label, _ in pairs])
        choices, answer = relabelled
        prompt = multiple_choice_prompt(stem, choices)
    elif re.fullmatch(r"[-+$€£]?[\d,]*\d(\.\d+)?", answer):
        answer = normalize_number(answer)
    return Example(
        id=_example_id(path, line, record),
        question=prompt,
        answer=answer,
        choices=choices,
        stem=stem,
        source="plain",
    )


def default_labels_path(path: str | Path) -> Path:
    """PIQA's companion labels file: `valid.jsonl` → `valid-labels.lst`.

    >>> default_labels_path("data/piqa/valid.jsonl").name
    'valid-labels.lst'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}-labels.lst")


def _read_piqa_labels(labels_path: Path) -> list[tuple[_Line, str]]:
    out = []
    for line in _read_lines(labels_path):
        value = line.text.strip()
        if value not in ("0", "1"):
            raise KvslError.one(
                "KVS605",
                f"PIQA label on line {line.number} is {value!r}, expected 0 or 1",
                line.span,
                help="a PIQA labels file has one 0 (sol1) or 1 (sol2) per line",
            )
        out.append((line, value))
    return out


def _load_piqa(path: Path, labels_path: Path | None, limit: int | None) -> list[Example]:
    labels_file = labels_path or default_labels_path(path)
    if not labels_file.exists():
        raise KvslError.one(
            "KVS605",
            f"PIQA labels file `{labels_file}` does not exist",
            Span.whole_file(str(path)),
            help="PIQA keeps its answers in a separate file: pass it with `--labels`",
            exit_code=ExitCode.USAGE,
        )
    labels = _read_piqa_labels(labels_file)
    examples: list[Example] = []
    count = 0
    for count, line in enumerate(_read_lines(path), start=1):
        if limit is not None and len(examples) >= limit:
            break
        record = _parse_json(line)
        goal, sol1, sol2 = (_string(record, k) for k in ("goal", "sol1", "sol2"))
        if goal is None or sol1 is None or sol2 is None:
            raise _missing(line, "piqa", "`goal`, `sol1` and `sol2`", _PIQA_SHAPE)
        if count > len(labels):
            raise KvslError.one(
                "KVS605",
                f"PIQA labels file `{labels_file}` has {len(labels)} labels but the data "
                f"has more lines",
                line.span,
                help="the labels file must have exactly one line per data line, in order",
            )
        choices = (Choice("A", sol1.strip()), Choice("B", sol2.strip()))
        stem = goal.strip()
        examples.append(
            Example(
                id=_example_id(path, line, record),
                question=multiple_choice_prompt(stem, choices),
                answer="A" if labels[count - 1][1] == "0" else "B",
                choices=choices,
                stem=stem,
                source="piqa",
            )
        )
    else:
        if count != len(labels):
            raise KvslError.one(
                "KVS605",
                f"PIQA labels file `{labels_file}` has {len(labels)} labels for {count} data lines",
                labels[count][0].span if count < len(labels) else Span.whole_file(str(labels_file)),
                help="the labels file must have exactly one line per data line, in order",
            )
    return examples


# --- format detection --------------------------------------------------------------------


def canonical_format(name: str) -> str:
    """`"ARC-Challenge"` → `"arc"`; KVS601 for a name kvsl does not know."""
    key = name.strip().lower()
    if key not in FORMAT_ALIASES:
        raise KvslError.usage(
            "KVS601",
            f"unknown benchmark format `{name}`",
            help=f"use one of {', '.join(FORMATS)}",
        )
    return FORMAT_ALIASES[key]


def _format_of(record: dict) -> str | None:
    question = record.get("question")
    if {"goal", "sol1", "sol2"} <= record.keys():
        return "piqa"
    if isinstance(question, dict):
        return "csqa" if "question_concept" in question else "arc"
    if isinstance(question, str) and "answer" in record:
        answer = record["answer"]
        if isinstance(answer, str) and _GSM8K_FINAL.search(answer) and "choices" not in record:
            return "gsm8k"
        return "plain"
    return None


def detect_format(path: str | Path) -> str:
    """The format of a benchmark file, from its first record.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> _ = open(p, "w").write('{"goal": "g", "sol1": "a", "sol2": "b"}\\n')
    >>> detect_format(p)
    'piqa'
    """
    path = Path(path)
    for line in _read_lines(path):
        record = _parse_json(line)
        fmt = _format_of(record)
        if fmt is None:
            raise KvslError.one(
                "KVS601",
                f"cannot tell which benchmark `{path}` is from its first record",
                line.span,
                help=f"name the format with `--benchmark` ({', '.join(FORMATS)}); a plain "
                f"file has records like {_PLAIN_SHAPE}",
                exit_code=ExitCode.USAGE,
            )
        return fmt
    raise _empty(path)


def _empty(path: Path) -> KvslError:
    return KvslError.one(
        "KVS607",
        f"benchmark file `{path}` has no records",
        Span.whole_file(str(path)),
        help="the file is empty or holds only blank lines",
    )


def load_benchmark(
    path: str | Path,
    format: str | None = None,
    *,
    labels_path: str | Path | None = None,
    limit: int | None = None,
) -> list[Example]:
    """Read a benchmark file in its native format (detected when `format` is None).

    `limit` keeps the first N examples (file order, deterministic). PIQA reads its labels
    from `labels_path`, by default `X-labels.lst` next to `X.jsonl`.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "gsm.jsonl")
    >>> _ = open(p, "w").write('{"question": "1+1?", "answer": "1+1=2\\\\n#### 2"}\\n')
    >>> ex = load_benchmark(p)[0]
    >>> ex.source, ex.answer
    ('gsm8k', '2')
    """
    path = Path(path)
    fmt = canonical_format(format) if format else detect_format(path)
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if fmt == "piqa":
        examples = _load_piqa(path, Path(labels_path) if labels_path else None, limit)
    else:
        examples = []
        for line in _read_lines(path):
            if limit is not None and len(examples) >= limit:
                break
            record = _parse_json(line)
            if fmt in ("arc", "csqa"):
                examples.append(_load_arc_like(path, line, record, fmt))
            elif fmt == "gsm8k":
                examples.append(_load_gsm8k(path, line, record))
            else:
                examples.append(_load_plain(path, line, record))
    if not examples and limit != 0:
        raise _empty(path)
    _check_unique_ids(path, examples)
    return examples


def _check_unique_ids(path: Path, examples: list[Example]) -> None:
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise KvslError.one(
                "KVS608",
                f"example id `{example.id}` appears twice in `{path}`",
                Span.whole_file(str(path)),
                help="results are cached per example id, so ids must be unique; remove the "
                "duplicate or leave `id` out to number examples by line",
            )
        seen.add(example.id)
