"""One record of each benchmark format → an `Example`; and the lines they are read from.

Every record reader takes a line of the file (`Line`: its number, offset, text and span)
and the JSON object on it, and returns an `Example` or raises a KvslError carrying a
KVS6xx diagnostic located at `file:line`. PIQA reads a second file, its labels.
See `kvsl.formats.questions` for the formats and `load_benchmark`, which dispatches here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kvsl.base.jsonl import loads
from kvsl.base.plurals import counted
from kvsl.formats.examples import (
    _GSM8K_FINAL,
    LETTERS,
    Choice,
    Example,
    multiple_choice_prompt,
    normalize_number,
)
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.files import MAX_DATA_BYTES, FileProblem, decode_data_text, read_regular_file
from kvsl.lang.source import Span

# --- errors ------------------------------------------------------------------------------


def _line_span(path: str, line_no: int, offset: int, text: str) -> Span:
    return Span(path, offset, offset + len(text), line_no, 1, line_no, len(text) + 1)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    offset: int
    text: str
    span: Span


def read_lines(path: Path) -> Iterator[Line]:
    """Non-blank lines of a UTF-8 text file with their spans (KVS600 if unreadable)."""
    shown = str(path)
    try:
        # Regular files only, capped: a FIFO or /dev/zero named by mistake must not hang.
        text = decode_data_text(read_regular_file(shown, MAX_DATA_BYTES))
    except FileProblem as problem:
        missing = problem.kind == "missing"
        raise KvslError.one(
            "KVS600",
            f"benchmark file `{shown}` {problem}",
            Span.whole_file(shown),
            help="pass the path of a local benchmark file; kvsl downloads nothing"
            if missing
            else "benchmark files are regular UTF-8 text files, one JSON record per line",
            exit_code=ExitCode.USAGE,
        ) from None
    except UnicodeDecodeError as err:
        raise KvslError.one(
            "KVS600",
            f"benchmark file `{shown}` is not UTF-8 text (byte {err.start:,})",
            Span.whole_file(shown),
            help="benchmark files are UTF-8 text, one JSON record per line",
            exit_code=ExitCode.USAGE,
        ) from None
    offset = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.strip():
            yield Line(number, offset, line, _line_span(shown, number, offset, line))
        offset += len(raw) + 1


def parse_json(line: Line) -> dict:
    try:
        record = loads(line.text)
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


def _missing(line: Line, fmt: str, what: str, expected: str) -> KvslError:
    return KvslError.one(
        "KVS603",
        f"{fmt} record on line {line.number} has no valid {what}",
        line.span,
        # "an arc record", not "a arc record" (arc is the one format named with a vowel)
        help=f"{'an' if fmt[:1] in 'aeiou' else 'a'} {fmt} record looks like {expected}",
    )


_ARC_SHAPE = '{"id": ..., "question": {"stem": ..., "choices": [{"text": ..., "label": "A"}]}, "answerKey": "A"}'
_PIQA_SHAPE = '{"goal": ..., "sol1": ..., "sol2": ...} with a labels file of 0/1 lines'
_GSM8K_SHAPE = '{"question": ..., "answer": "... #### 42"}'
PLAIN_SHAPE = '{"question": ..., "answer": ...} (optional "id", "choices")'


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


def _bad_answer(line: Line, answer: object, labels: list[str]) -> KvslError:
    return KvslError.one(
        "KVS604",
        f"answer {answer!r} on line {line.number} is not one of the choice labels "
        f"{', '.join(labels)}",
        line.span,
        help="the answer key must be the label of one of the record's choices",
    )


def _example_id(path: Path, line: Line, record: dict) -> str:
    given = record.get("id")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given).strip():
        return str(given)
    return f"{path.stem}-{line.number}"


def load_arc_like(path: Path, line: Line, record: dict, fmt: str) -> Example:
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


def load_gsm8k(path: Path, line: Line, record: dict) -> Example:
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


def load_plain(path: Path, line: Line, record: dict) -> Example:
    question = _string(record, "question")
    raw_answer = record.get("answer")
    if isinstance(raw_answer, bool) or not isinstance(raw_answer, str | int | float):
        raw_answer = None
    if question is None or raw_answer is None or not str(raw_answer).strip():
        raise _missing(line, "plain", "`question` and `answer`", PLAIN_SHAPE)
    answer = str(raw_answer).strip()
    stem = question.strip()
    choices: tuple[Choice, ...] = ()
    prompt = stem
    if "choices" in record:
        pairs = _choice_list(record["choices"])
        if pairs is None:
            raise _missing(line, "plain", "`choices` list", PLAIN_SHAPE)
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


def _read_piqa_labels(labels_path: Path) -> list[tuple[Line, str]]:
    out = []
    for line in read_lines(labels_path):
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


def load_piqa(path: Path, labels_path: Path | None, limit: int | None) -> list[Example]:
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
    for count, line in enumerate(read_lines(path), start=1):
        if limit is not None and len(examples) >= limit:
            break
        record = parse_json(line)
        goal, sol1, sol2 = (_string(record, k) for k in ("goal", "sol1", "sol2"))
        if goal is None or sol1 is None or sol2 is None:
            raise _missing(line, "piqa", "`goal`, `sol1` and `sol2`", _PIQA_SHAPE)
        if count > len(labels):
            raise KvslError.one(
                "KVS605",
                f"PIQA labels file `{labels_file}` has {counted(len(labels), 'label')} but the "
                "data has more lines",
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
                f"PIQA labels file `{labels_file}` has {counted(len(labels), 'label')} for "
                f"{counted(count, 'data line')}",
                labels[count][0].span if count < len(labels) else Span.whole_file(str(labels_file)),
                help="the labels file must have exactly one line per data line, in order",
            )
    return examples
