"""`kvsl eval`: benchmarks, answer extraction, methods, statistics and reports.

Modules (one concept each):

- `answers`   grading an example's final answer (reading it: `kvsl.base.answers`)
- `stats`     accuracy intervals, paired tests, mean ± sd over runs
- `methods`   plain, chain-of-thought, cache steering, cache + CoT, CAA
- `caa`       contrastive activation addition (residual-stream steering) and GGUF export
- `runner`    batched, resumable evaluation: outcomes and their summaries
- `results_cache`  the per-example cache (`results.jsonl`) that makes an eval resume
- `sweep`     sweeps and the CAA grid on a dev split (`SweepPoint`)
- `session`   the loaded model, plan and vectors an eval runs with (`open_context`)
- `pipeline`  the whole of `kvsl eval`: `EvalRequest`, `run_eval`, `run_sweep`
- `report`    tables (rich / JSON / Markdown); `plot` sweep plots

The question files themselves are read by `kvsl.formats.questions` (shared with the
teacher). `answers` and `stats` import no torch, so the front end can use them cheaply;
the rest is back end and is imported lazily by the CLI.
"""
