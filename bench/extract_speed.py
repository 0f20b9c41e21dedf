"""Extraction speed, measured side by side in one run (issue 4, benchmarks 2 and 3).

    python bench/extract_speed.py TRACES.jsonl [--pairs 12] [--shots 2] [--rounds 3]
        [--questions POOL.jsonl] [--select nearest] [--prefix "Let's think step by step."]
        [--methods bare,paper,fp32,bf16]

    # the paper's recipe at k = 10 (ratio (a) only):
    python bench/extract_speed.py specs/traces/step_by_step.jsonl --shots 10 --pairs 6 \
        --questions specs/questions/gsm8k_train.jsonl --methods bare,fp32 --threads 2

Prints, on the same contrast pairs (same tokens):
  (a) bare forward of the base model over both prompts of every pair / kvsl extraction
      (goal >= 0.9: extraction costs no more than running the decoder once over the tokens);
  (b) a paper-style loop (batch size 1, fp32, full model with logits over every position,
      no prefix sharing) / kvsl extraction at fp32 (goal >= 1.3) and at bf16 (goal >= 2),
      with the per-layer cosine of bf16 to fp32 vectors over layers 1 and up (goal: mean
      >= 0.999).
`--shots` sets k (the paper uses 5-12); `--questions` draws the targets from a query pool
so that k can reach the number of traces; `--prefix` appends the paper's prefix to every
prompt. Each method runs `--rounds` times, interleaved round by round; the median round
counts and the spread (min-max) is printed (the machine is shared). Ratios are of medians.
The trace file may use kvsl's schema (question/steps/answer) or the paper's
(query/steps/solution), which kvsl reads unchanged; it is never copied.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def make_plan(
    traces: Path,
    pairs: int,
    shots: int,
    seed: int,
    model: str,
    precision: str,
    *,
    questions: Path | None = None,
    selection: str = "random",
    prefix: str = "",
):
    import hashlib

    from kvsl.engine.models import resolve_ref
    from kvsl.lang.plan import ContrastPlan, ExtractPlan, GeneratePlan, Plan, SteerPlan

    return Plan.create(
        style="bench",
        description="extraction benchmark",
        spec_path=str(traces.parent / "bench.kvs"),
        model=resolve_ref(model),
        teacher=None,
        contrast=ContrastPlan(
            traces=str(traces),
            traces_sha256=hashlib.sha256(traces.read_bytes()).hexdigest(),
            pairs=pairs,
            shots=shots,
            selection=selection,  # type: ignore[arg-type]
            seed=seed,
            questions=str(questions) if questions else None,
            questions_sha256=hashlib.sha256(questions.read_bytes()).hexdigest() if questions else "",
        ),
        extract=ExtractPlan(precision=precision, prefix=prefix),  # type: ignore[arg-type]
        steer=SteerPlan(),
        generate=GeneratePlan(),
    )


def bare_forward(loaded, tokenized) -> float:
    """The base model (no LM head) once over each full prompt, batch 1."""
    from kvsl.engine.models import base_model

    base = base_model(loaded.model)
    started = time.perf_counter()
    with torch.inference_mode():
        for pair in tokenized:
            for ids in (pair.positive, pair.negative):
                base(input_ids=torch.tensor([list(ids)], device=loaded.device), use_cache=True)
    _sync(loaded)
    return time.perf_counter() - started


def paper_loop(loaded, tokenized) -> tuple[float, dict[int, torch.Tensor]]:
    """Batch 1, fp32, full model with logits at every position, full prompts, read the cache."""
    from transformers import DynamicCache

    from kvsl.engine.models import cache_kwarg

    model = loaded.model
    kwarg = cache_kwarg(model)
    values: dict[int, torch.Tensor] = {}
    started = time.perf_counter()
    with torch.inference_mode():
        for pair in tokenized:
            last = []
            for ids in (pair.positive, pair.negative):
                cache = DynamicCache(config=model.config)
                model(torch.tensor([list(ids)], device=loaded.device), use_cache=True, **{kwarg: cache})
                last.append([layer.values[0, :, -1].float() for layer in cache.layers])
            for layer, (p, n) in enumerate(zip(*last, strict=True)):
                values[layer] = values.get(layer, 0) + (p - n).cpu() / len(tokenized)  # type: ignore[operator]
    _sync(loaded)
    return time.perf_counter() - started, values


def _sync(loaded) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()


METHODS = ("bare", "paper", "fp32", "bf16")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", type=Path, help="trace JSONL (kvsl or paper schema)")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--shots", type=int, default=2, help="k demos per prompt")
    parser.add_argument("--questions", type=Path, default=None, help="query pool (targets)")
    parser.add_argument("--select", choices=("random", "nearest"), default="random")
    parser.add_argument("--prefix", default="", help="the paper's prefix variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS), help="subset of bare,paper,fp32,bf16")
    parser.add_argument("--model", default="smollm2-135m", help="embedded name, directory or hub id")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu (default) or cuda")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not set(methods) <= set(METHODS) or "fp32" not in methods:
        parser.error("--methods is a subset of bare,paper,fp32,bf16 that includes fp32")
    if args.threads:
        torch.set_num_threads(args.threads)

    from kvsl.engine.contrast import build_contrast_pairs, tokenize_pairs
    from kvsl.engine.extract import extract_vectors, layer_cosines
    from kvsl.engine.models import load_model, resolve_ref

    traces = args.traces.resolve()
    options = {"questions": args.questions, "selection": args.select, "prefix": args.prefix}
    plan32 = make_plan(traces, args.pairs, args.shots, args.seed, args.model, "fp32", **options)
    plan16 = make_plan(traces, args.pairs, args.shots, args.seed, args.model, "bf16", **options)
    fp32 = load_model(resolve_ref(args.model), dtype=torch.float32, device=args.device)
    bf16 = (
        load_model(resolve_ref(args.model), dtype=torch.bfloat16, device=args.device)
        if "bf16" in methods
        else None
    )
    pairs = build_contrast_pairs(plan32, on_warning=lambda d: print(f"warning {d.code}: {d.message}"))
    tokenized = tokenize_pairs(pairs, fp32.tokenizer, args.prefix)
    tokens = sum(len(p.positive) + len(p.negative) for p in tokenized)
    shared = sum(min(p.shared, len(p.positive) - 1, len(p.negative) - 1) for p in tokenized)
    print(
        f"model {args.model}: {fp32.geometry}; {len(tokenized)} pairs × {args.shots} shots "
        f"({args.select}{', query pool' if args.questions else ''}"
        f"{', prefix' if args.prefix else ''}), {tokens} prompt tokens "
        f"(mean {tokens / (2 * len(tokenized)):.0f} per prompt), {shared} shared-prefix tokens; "
        f"device {fp32.device}, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    times: dict[str, list[float]] = {m: [] for m in methods}
    vectors32 = vectors16 = None
    paper_values: dict[int, torch.Tensor] = {}
    for round_index in range(args.rounds):
        if "bare" in methods:
            times["bare"].append(bare_forward(fp32, tokenized))
        if "paper" in methods:
            seconds, paper_values = paper_loop(fp32, tokenized)
            times["paper"].append(seconds)
        started = time.perf_counter()
        vectors32 = extract_vectors(fp32, plan32, pairs=pairs, progress=False)
        times["fp32"].append(time.perf_counter() - started)
        if bf16 is not None:
            started = time.perf_counter()
            vectors16 = extract_vectors(bf16, plan16, pairs=pairs, progress=False)
            times["bf16"].append(time.perf_counter() - started)
        print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    assert vectors32 is not None
    median = {k: statistics.median(v) for k, v in times.items()}
    print()
    print(f"median of {args.rounds} (min-max): " + ", ".join(f"{k} {_spread(v)}" for k, v in times.items()))
    if "bare" in median:
        print(f"(a) bare forward / kvsl fp32 extraction          = {median['bare'] / median['fp32']:.2f}  (goal >= 0.9)")
    if "paper" in median:
        print(f"(b) paper loop / kvsl fp32 extraction            = {median['paper'] / median['fp32']:.2f}  (goal >= 1.3)")
        # kvsl's fp32 vectors must equal the paper loop's (prefix sharing and no LM head change nothing)
        worst = max(float((vectors32.values[layer] - paper_values[layer]).abs().max()) for layer in paper_values)
        print(f"    max |kvsl fp32 − paper loop| over value vectors = {worst:.2e}")
    if "paper" in median and "bf16" in median:
        print(f"    paper loop / kvsl bf16 extraction            = {median['paper'] / median['bf16']:.2f}  (goal >= 2)")
    if vectors16 is not None:
        cosines = layer_cosines(vectors16, vectors32)
        steered = [layer for layer in cosines if layer >= 1]
        value_cos = [cosines[layer][1] for layer in steered]
        key_cos = [cosines[layer][0] for layer in steered]
        print(f"    bf16 vs fp32 cosine, layers 1+: values mean {statistics.mean(value_cos):.5f} "
              f"(min {min(value_cos):.5f}), keys mean {statistics.mean(key_cos):.5f} (min {min(key_cos):.5f})")
        print("    per-layer value cosine: " + " ".join(f"{layer}:{cosines[layer][1]:.4f}" for layer in steered))
    sys.stdout.flush()


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        main()
