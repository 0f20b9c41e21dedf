"""Benchmark: what `kvsl tune` with its defaults costs, from a measured decoding speed.

Measures batched greedy decoding of the model (default: the embedded SmolLM2-135M, fp32,
CPU) on real dev questions, `--batch-size` prompts with exactly `--new-tokens` new tokens
each, the way a tune generates, and projects the cost of the default tune:

    tokens  = steered answers × their mean length + plain answers × theirs
    seconds ≈ tokens × seconds per token of a batch row

Both wall time and the process's CPU time are reported. On a shared machine the wall time
says more about the neighbours than about kvsl; with `--threads 1` the CPU time per token
is close to what one dedicated core takes, and two cores (the goal: 200 dev questions, 2
cores, ≤ 30 minutes) are projected from it with `--two-core-speedup` (an assumption, 1.6x
by default: pass a figure measured on a quiet machine).

    python bench/tune_cost.py --dev ARC-Challenge-Dev.jsonl --format arc --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _measure(model, tokenizer, questions, args) -> tuple[list[float], list[float]]:
    from kvsl.engine.generate import chat_prompt
    from kvsl.engine.offline import generate_texts
    from kvsl.lang.plan import GenerationSettings

    ids = [chat_prompt(tokenizer, q) for q in questions]
    # Exactly `new_tokens` per row (end of text suppressed): the worst case of a tune's rows.
    settings = GenerationSettings(
        max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, repetition_penalty=1.15
    )
    generate_texts(model, tokenizer, ids[:2], settings=GenerationSettings(max_new_tokens=2))
    walls, cpus = [], []
    for _ in range(args.reps):
        wall, cpu = time.perf_counter(), time.process_time()
        generate_texts(model, tokenizer, ids, settings=settings, batch_size=args.batch_size)
        rows = len(ids) * args.new_tokens
        walls.append((time.perf_counter() - wall) / rows)
        cpus.append((time.process_time() - cpu) / rows)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dev", required=True, help="a dev file (questions as a tune sees them)")
    parser.add_argument("--format", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steered-tokens", type=float, default=85.0,
                        help="mean new tokens of a steered answer (loops run to the cap, 96)")
    parser.add_argument("--plain-tokens", type=float, default=50.0,
                        help="mean new tokens of a plain answer (docs/results.md: ARC 56 of 256)")
    parser.add_argument("--two-core-speedup", type=float, default=1.6)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from kvsl.engine.models import load_model, resolve_ref
    from kvsl.formats.questions import load_benchmark
    from kvsl.tune.grid import TuneRequest, default_penalties, default_values
    from kvsl.tune.search import answer_budget, rung_sizes

    loaded = load_model(resolve_ref(args.model), dtype=torch.float32)
    questions = [e.question for e in load_benchmark(args.dev, args.format)[: args.batch_size]]
    walls, cpus = _measure(loaded.model, loaded.tokenizer, questions, args)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    # The default grid of a built-in spec: its c_v ± 2 and the penalties off and its own.
    penalties = len(default_penalties(1.1))
    settings = len(default_values(5.0)) * penalties
    request = TuneRequest("", "")
    rungs = rung_sizes(200, request.start, request.eta, settings)
    steered, plain = answer_budget(rungs, decodings=penalties)
    tokens = steered * args.steered_tokens + plain * args.plain_tokens
    print(f"model {args.model}, batch {args.batch_size}, {args.new_tokens} new tokens/row, "
          f"{args.threads} thread(s), {args.reps} reps")
    print(f"per token of a batch row: wall {1000 * wall:.1f} ms (spread "
          f"{1000 * min(walls):.1f}-{1000 * max(walls):.1f}), CPU {1000 * cpu:.1f} ms "
          f"(spread {1000 * min(cpus):.1f}-{1000 * max(cpus):.1f})")
    print(f"default tune: {settings} settings, rungs {rungs}: at most {steered} steered + "
          f"{plain} plain answers ≈ {tokens / 1000:.0f}k new tokens "
          f"({args.steered_tokens:g} and {args.plain_tokens:g} per answer)")
    one_core = tokens * cpu / args.threads
    print(f"projected: {one_core / 60:.0f} min on one dedicated core (CPU time), "
          f"{one_core / args.two_core_speedup / 60:.0f} min on two "
          f"(x{args.two_core_speedup:g}); wall time here: {tokens * wall / 60:.0f} min")


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        main()
