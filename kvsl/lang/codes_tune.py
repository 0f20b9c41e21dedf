"""Diagnostic codes KVS7xx, owned by kvsl tune (plain data; see kvsl.lang.codes).

KVS700-709  the dev set, the spec and the search (kvsl.tune)
KVS710-719  reserved for tune's later phases
"""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

TUNE_CODES: tuple[Code, ...] = (
    Code(
        "KVS700",
        "tuning on a test split",
        Severity.ERROR,
        "`kvsl tune` calibrates on a dev (or train) split and never on a test split: values "
        "chosen on test questions make every later test score optimistic. A file whose name "
        "says `test` (ARC-Challenge-Test.jsonl, gsm8k/test.jsonl, csqa/test_rand_split...) is "
        "refused, and so is PIQA's `valid` split, which kvsl's reports use as PIQA's test set.",
        "kvsl tune specs/step_by_step.kvs --dev arc/ARC-Challenge-Test.jsonl",
        "kvsl tune specs/step_by_step.kvs --dev arc/ARC-Challenge-Dev.jsonl",
    ),
    Code(
        "KVS701",
        "style cannot be scored",
        Severity.ERROR,
        "The tuning objective is style adherence (kvsl.styles), so the spec's style must be "
        "a built-in one or declare regex `markers` that mark the style in a generation.",
        'style "terse" { description = "Short answers." ... }',
        'style "terse" { description = "Short answers."  markers = ["(?m)^Answer:"] ... }',
    ),
    Code(
        "KVS702",
        "invalid tune option",
        Severity.ERROR,
        "A `kvsl tune` option is out of range or cannot be read: grids are comma-separated "
        "numbers (`--values 2,4,6`), layer grids are `;`-separated layer lists "
        "(`--layers '1..;4..'`), shots must be below the spec's `pairs`, penalties above 0, "
        "and subset sizes at least 1. Usage errors exit with status 2.",
        "kvsl tune style.kvs --dev dev.jsonl --values 2,four",
        "kvsl tune style.kvs --dev dev.jsonl --values 2,4",
    ),
    Code(
        "KVS703",
        "no setting keeps dev accuracy",
        Severity.WARNING,
        "Every setting tried scored a dev accuracy significantly below plain generation "
        "under the same decoding (exact McNemar test), so none is chosen and `--write` "
        "changes nothing. Try smaller coefficients (`--values 1,2,3`) or a repetition "
        "penalty.",
        "kvsl tune style.kvs --dev dev.jsonl --values 12,16 --write",
        "kvsl tune style.kvs --dev dev.jsonl --values 2,4,6 --write",
    ),
    Code(
        "KVS704",
        "cannot write the tuned values",
        Severity.ERROR,
        "`--write` edits the spec file in place through the formatter. It refuses a built-in "
        "spec inside the installed package and an artifact (no spec to edit); copy the spec "
        "and tune the copy.",
        "kvsl tune step-by-step --dev dev.jsonl --write",
        "kvsl tune my_styles/step_by_step.kvs --dev dev.jsonl --write",
    ),
    Code(
        "KVS706",
        "the spec changed while it was tuned",
        Severity.ERROR,
        "`kvsl tune --write` measures the spec as it was when the run began. If the file "
        "changed before the run ended (an editor saved it, another tune wrote it), writing "
        "the chosen values would put figures measured on the old spec into the new one, or "
        "undo the edit. Nothing is written into the spec; the report and plot are written "
        "as usual and name the winner. Rerun on the spec as it is: the results cache makes "
        "every setting already measured free.",
        "kvsl tune style.kvs --dev dev.jsonl --write   # and save style.kvs meanwhile",
        "kvsl tune style.kvs --dev dev.jsonl --write",
    ),
    Code(
        "KVS705",
        "small dev set",
        Severity.WARNING,
        "The dev set has fewer than 30 questions: the paired accuracy test has little power, "
        "so a setting that costs accuracy may pass it. 100-200 dev questions are usual.",
        "kvsl tune style.kvs --dev ten_questions.jsonl",
        "kvsl tune style.kvs --dev ARC-Challenge-Dev.jsonl --limit 200",
    ),
)
