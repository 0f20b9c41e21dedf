"""Diagnostic codes KVS6xx, owned by kvsl eval (plain data; see kvsl.lang.codes).

KVS600-609  benchmark files (kvsl.formats.questions)
KVS610-629  eval settings, methods, caches, CAA and control-vector export
"""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

EVAL_CODES: tuple[Code, ...] = (
    Code(
        "KVS600",
        "benchmark file unreadable",
        Severity.ERROR,
        "The question file given with `--data` or `--dev` (`kvsl eval`, `kvsl tune`), "
        "`--questions` (`kvsl teach`), or a PIQA labels file, does not "
        "exist, cannot be read, or is not UTF-8 text. kvsl never downloads benchmarks: every "
        "path is a local file in the benchmark's native format.",
        "kvsl eval style.kvs --benchmark arc --data arc/ARC-Challenge-Tset.jsonl",
        "kvsl eval style.kvs --benchmark arc --data arc/ARC-Challenge-Test.jsonl",
    ),
    Code(
        "KVS601",
        "unknown benchmark format",
        Severity.ERROR,
        "The format named with `--benchmark` is not one kvsl reads, or the format could not "
        "be told from the file's first record. kvsl reads gsm8k, arc, csqa, piqa and plain "
        '`{"question", "answer"}` JSONL.',
        "kvsl eval style.kvs --benchmark mmlu --data mmlu.jsonl",
        "kvsl eval style.kvs --benchmark plain --data mmlu_as_plain.jsonl",
    ),
    Code(
        "KVS602",
        "invalid JSON in benchmark file",
        Severity.ERROR,
        "Every line of a benchmark file must be one JSON object (JSON Lines). A truncated "
        "download or a hand edit leaves lines that are not JSON.",
        '{"question": "What is 2+2?", "answer": "#### 4"',
        '{"question": "What is 2+2?", "answer": "2+2=4\\n#### 4"}',
    ),
    Code(
        "KVS603",
        "benchmark record is missing a field",
        Severity.ERROR,
        "A record lacks a field its format needs: ARC and CommonsenseQA need "
        "`question.stem`, `question.choices` and `answerKey`; PIQA needs `goal`, `sol1` and "
        "`sol2`; GSM8K and plain files need `question` and `answer`.",
        '{"id": "q1", "question": {"choices": [{"text": "x", "label": "A"}]}, "answerKey": "A"}',
        '{"id": "q1", "question": {"stem": "Pick x.", "choices": [{"text": "x", "label": "A"}, '
        '{"text": "y", "label": "B"}]}, "answerKey": "A"}',
    ),
    Code(
        "KVS604",
        "answer is not one of the choices",
        Severity.ERROR,
        "A multiple-choice record's answer key must be the label of one of its choices (or "
        "the record has no answer key at all, as in CommonsenseQA's unlabelled test split, "
        "which cannot be scored: use the dev split).",
        '{"question": {"stem": "Pick x.", "choices": [{"text": "x", "label": "A"}, '
        '{"text": "y", "label": "B"}]}, "answerKey": "C"}',
        '{"question": {"stem": "Pick x.", "choices": [{"text": "x", "label": "A"}, '
        '{"text": "y", "label": "B"}]}, "answerKey": "A"}',
    ),
    Code(
        "KVS605",
        "labels file missing or misaligned",
        Severity.ERROR,
        "PIQA keeps its answers in a separate file (`valid-labels.lst` next to "
        "`valid.jsonl`), one 0 or 1 per line, aligned with the data. kvsl needs that file "
        "and needs exactly one label per data line.",
        "kvsl eval style.kvs --benchmark piqa --data piqa/valid.jsonl  # no valid-labels.lst",
        "kvsl eval style.kvs --benchmark piqa --data piqa/valid.jsonl --labels piqa/valid-labels.lst",
    ),
    Code(
        "KVS606",
        "solution without a final number",
        Severity.ERROR,
        "A GSM8K solution ends with a line `#### N`, the number the model's answer is "
        "compared with. A record without it cannot be scored.",
        '{"question": "What is 2+2?", "answer": "2+2 is four"}',
        '{"question": "What is 2+2?", "answer": "2+2=4\\n#### 4"}',
    ),
    Code(
        "KVS607",
        "empty benchmark",
        Severity.ERROR,
        "The benchmark file holds no records (it is empty or only blank lines), so there is "
        "nothing to evaluate.",
        "kvsl eval style.kvs --benchmark gsm8k --data empty.jsonl",
        "kvsl eval style.kvs --benchmark gsm8k --data gsm8k/test.jsonl",
    ),
    Code(
        "KVS608",
        "duplicate example id",
        Severity.ERROR,
        "Results are cached per example id so that an interrupted eval resumes; two records "
        "with one id would share a cached answer.",
        '{"id": "q1", "question": "1+1?", "answer": "2"}\n{"id": "q1", "question": "2+2?", "answer": "4"}',
        '{"id": "q1", "question": "1+1?", "answer": "2"}\n{"id": "q2", "question": "2+2?", "answer": "4"}',
    ),
    Code(
        "KVS610",
        "unknown eval method",
        Severity.ERROR,
        "`--methods` takes a comma-separated list of plain, cot, cache, cache+cot and caa.",
        "kvsl eval style.kvs --benchmark arc --data test.jsonl --methods plain,steer",
        "kvsl eval style.kvs --benchmark arc --data test.jsonl --methods plain,cache",
    ),
    Code(
        "KVS611",
        "method needs a spec or artifact",
        Severity.ERROR,
        "Cache steering and CAA read their contrast pairs (and vectors) from a style: give a "
        "`.kvs` spec or a built artifact as the first argument, or evaluate only the methods "
        "that need none (plain, cot).",
        "kvsl eval --model smollm2-135m --benchmark arc --data test.jsonl --methods cache",
        "kvsl eval specs/step_by_step.kvs --benchmark arc --data test.jsonl --methods cache",
    ),
    Code(
        "KVS612",
        "invalid eval option",
        Severity.ERROR,
        "An eval option is out of range: `--runs`, `--batch-size` and `--max-new-tokens` "
        "must be at least 1, `--limit` at least 0, temperatures non-negative, `--top-p` in "
        "(0, 1], and sweep values must parse as numbers.",
        "kvsl eval style.kvs --benchmark arc --data test.jsonl --runs 0",
        "kvsl eval style.kvs --benchmark arc --data test.jsonl --runs 5 --temperature 0.7",
    ),
    Code(
        "KVS613",
        "unreadable line in results cache",
        Severity.WARNING,
        "A line of the per-example results cache (`results.jsonl` in the output folder) is "
        "not a valid record, usually because a run was killed while writing it. The line is "
        "ignored and that example is generated again.",
        '{"key": "plain/3f2a.../Mercury_7175875", "response": "The answ',
        '{"key": "plain/3f2a.../Mercury_7175875", "response": "The answer is C.", ...}',
    ),
    Code(
        "KVS614",
        "activation-steering layer outside the model",
        Severity.ERROR,
        "Activation steering adds its vector to the residual stream after one decoder "
        "layer; that layer must exist in the model (negative indices count from the end).",
        "kvsl eval style.kvs --benchmark arc --data test.jsonl --methods caa --caa-layer 40",
        "kvsl eval style.kvs --benchmark arc --data test.jsonl --methods caa --caa-layer 12",
    ),
    Code(
        "KVS615",
        "control vector cannot be written",
        Severity.ERROR,
        "Exporting a CAA vector as a llama.cpp control-vector GGUF failed: the output folder "
        "does not exist or is not writable.",
        "kvsl eval style.kvs ... --export-caa /read-only/caa.gguf",
        "kvsl eval style.kvs ... --export-caa out/caa.gguf",
    ),
    Code(
        "KVS616",
        "dev split needed",
        Severity.ERROR,
        "Sweeps and the CAA layer/multiplier search choose hyperparameters on a dev split, "
        "never on the test set. Give one with `--dev`, or fix CAA's layer and multiplier "
        "with `--caa-layer` and `--caa-multiplier`.",
        "kvsl eval style.kvs --benchmark arc --data ARC-Challenge-Test.jsonl --sweep value=0,2,4",
        "kvsl eval style.kvs --benchmark arc --dev ARC-Challenge-Dev.jsonl --sweep value=0,2,4",
    ),
    Code(
        "KVS617",
        "layer 0 cannot be a control vector",
        Severity.ERROR,
        "llama.cpp adds control vectors to the output of layers 1 and up; a `direction.0` "
        "tensor is rejected when the file is loaded. Choose a CAA layer of 1 or more before "
        "exporting.",
        "kvsl eval style.kvs ... --methods caa --caa-layer 0 --export-caa caa.gguf",
        "kvsl eval style.kvs ... --methods caa --caa-layer 12 --export-caa caa.gguf",
    ),
    Code(
        "KVS620",
        "results cache rewritten without its invalid lines",
        Severity.NOTE,
        "The run that finds invalid lines in the results cache (KVS613) rewrites the file "
        "once without them, keeping every valid line exactly as it was, so later runs do "
        "not warn about the same lines again. The rewrite replaces the file in one step "
        "(a kill at any moment leaves the old file or the new one), under the lock every "
        "append to the cache takes.",
        '{"key": "plain/3f2a.../Mercury_7175875", "response": "The answ',
        "(nothing to fix: the line is gone, and its example was generated again)",
    ),
    Code(
        "KVS621",
        "results cache could not be rewritten",
        Severity.WARNING,
        "The results cache had invalid lines (KVS613), and rewriting it without them "
        "failed (a read-only folder, a full disk). The file is left as it was and the run "
        "goes on; the same lines are warned about on the next run.",
        "chmod a-w out/ && kvsl eval style.kvs --benchmark arc --data test.jsonl --out out",
        "chmod u+w out/ && kvsl eval style.kvs --benchmark arc --data test.jsonl --out out",
    ),
)
