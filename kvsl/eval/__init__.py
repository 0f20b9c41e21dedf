"""`kvsl eval`: benchmarks, answer extraction, methods, statistics and reports.

Modules (one concept each):

- `datasets`  loaders for GSM8K, ARC, CommonsenseQA, PIQA and plain `{question, answer}` JSONL
- `answers`   final-answer extraction (numbers, multiple-choice labels)
- `stats`     accuracy intervals, paired tests, mean ± sd over runs
- `methods`   plain, chain-of-thought, cache steering, cache + CoT, CAA
- `caa`       contrastive activation addition (residual-stream steering) and GGUF export
- `runner`    batched, resumable evaluation and sweeps
- `report`    tables (rich / JSON / Markdown); `plot` sweep plots

`datasets`, `answers` and `stats` import no torch, so the teacher and the front end can
use them cheaply; the rest is back end and is imported lazily by the CLI.
"""
