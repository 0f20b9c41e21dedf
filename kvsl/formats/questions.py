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

The pieces: `kvsl.formats.examples` (`Example`, `Choice`), `kvsl.formats.question_records`
(one record of each format); this module detects a file's format and loads it.
"""

from __future__ import annotations

from pathlib import Path

from kvsl.formats.examples import (
    _GSM8K_FINAL,
    FORMAT_ALIASES,
    FORMATS,
    LETTERS,
    MULTIPLE_CHOICE_FORMATS,
    Choice,
    Example,
    multiple_choice_prompt,
    normalize_number,
)
from kvsl.formats.question_records import (
    PLAIN_SHAPE,
    default_labels_path,
    load_arc_like,
    load_gsm8k,
    load_piqa,
    load_plain,
    parse_json,
    read_lines,
)
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span

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
    for line in read_lines(path):
        record = parse_json(line)
        fmt = _format_of(record)
        if fmt is None:
            raise KvslError.one(
                "KVS601",
                f"cannot tell which benchmark `{path}` is from its first record",
                line.span,
                help=f"name the format with `--benchmark` ({', '.join(FORMATS)}); a plain "
                f"file has records like {PLAIN_SHAPE}",
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
        examples = load_piqa(path, Path(labels_path) if labels_path else None, limit)
    else:
        examples = []
        for line in read_lines(path):
            if limit is not None and len(examples) >= limit:
                break
            record = parse_json(line)
            if fmt in ("arc", "csqa"):
                examples.append(load_arc_like(path, line, record, fmt))
            elif fmt == "gsm8k":
                examples.append(load_gsm8k(path, line, record))
            else:
                examples.append(load_plain(path, line, record))
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


__all__ = [
    "FORMATS",
    "FORMAT_ALIASES",
    "LETTERS",
    "MULTIPLE_CHOICE_FORMATS",
    "Choice",
    "Example",
    "canonical_format",
    "default_labels_path",
    "detect_format",
    "load_benchmark",
    "multiple_choice_prompt",
    "normalize_number",
]
