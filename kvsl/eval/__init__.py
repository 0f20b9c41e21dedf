"""`kvsl eval`: benchmarks, answer extraction, methods, statistics and reports.

Modules (one concept each):

- `answers`   grading an example's final answer (reading it: `kvsl.base.answers`)
- `stats`     accuracy intervals, paired tests, mean ± sd over runs
- `methods`   plain, chain-of-thought, cache steering, cache + CoT, CAA
- `caa`       contrastive activation addition (residual-stream steering) and GGUF export
- `runner`    batched, resumable evaluation and sweeps
- `report`    tables (rich / JSON / Markdown); `plot` sweep plots

The question files themselves are read by `kvsl.formats.questions` (shared with the
teacher). `answers` and `stats` import no torch, so the front end can use them cheaply;
the rest is back end and is imported lazily by the CLI.
"""
