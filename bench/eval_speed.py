"""Benchmark: static batches against the batch kept full, as `kvsl eval` and `kvsl tune` generate.

On real dev questions (default: ARC-Challenge Dev), with the embedded model (fp32, CPU),
both batchings answer the same questions with the same method through
`kvsl.eval.methods.Generator` (the path of eval, tune and scripts/dev_accuracy.py):
`--method steered` is the shipped step-by-step vectors at the spec's c_v 5 with its
repetition penalty 1.1 (a tune's usual row: some answers loop to the cap, others end
early); `plain` is the same decoding without the edit. For each batch size, static and
continuous runs alternate (the order swaps every repetition); the table gives each one's
median wall time with its spread (min-max), answers per minute, and the median of the
paired ratios static / continuous (> 1: the full batch is faster). CPU time (user + sys
of this process) is given too: on a shared machine wall time says as much about the
neighbours. Greedy answers must be the same either way; mismatches are counted.

    python bench/eval_speed.py --dev ARC-Challenge-Dev.jsonl --format arc --questions 48 \\
        --batch-sizes 8,16,32 --reps 3 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dev_run import add_dev_arguments, load_dev_run, step_by_step_vectors
from timing import Spread, paired_ratios


def _method(kind: str):
    from kvsl.eval.methods import cache_method, plain_method

    if kind == "plain":
        return plain_method()
    vectors = step_by_step_vectors()
    return cache_method(vectors, {layer: (0.0, 5.0) for layer in range(1, vectors.num_layers)})


def _timed(generator, method, questions, settings) -> tuple[float, float, list[str]]:
    wall, cpu = time.perf_counter(), os.times()
    gens = generator.generate(method, questions, settings)
    after = os.times()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    return time.perf_counter() - wall, used, [g.text for g in gens]


def _short(spread: Spread, spec: str) -> str:
    return f"{spread.median:{spec}} ({spread.low:{spec}}-{spread.high:{spec}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dev_arguments(parser, questions=48)
    parser.add_argument("--batch-sizes", default="8,16,32")
    parser.add_argument("--method", choices=("steered", "plain"), default="steered")
    args = parser.parse_args()

    from kvsl.eval.methods import Generator
    from kvsl.lang.plan import GenerationSettings

    model, tokenizer, questions = load_dev_run(args)
    method = _method(args.method)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, repetition_penalty=1.1)
    Generator(model, tokenizer, batch_size=2).generate(method, questions[:2], GenerationSettings(max_new_tokens=2))
    load_before = os.getloadavg()
    print(f"{args.model} fp32, {args.threads} thread(s), {len(questions)} questions, "
          f"{args.method}, max {args.max_new_tokens} new tokens, {args.reps} reps; "
          f"load average {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}", flush=True)
    rows = []
    for size in (int(s) for s in args.batch_sizes.split(",")):
        times: dict[str, list[float]] = {"static": [], "continuous": []}
        cpus: dict[str, list[float]] = {"static": [], "continuous": []}
        texts: dict[str, list[str]] = {}
        for rep in range(args.reps):
            for name in (("static", "continuous") if rep % 2 == 0 else ("continuous", "static")):
                generator = Generator(model, tokenizer, batch_size=size, static_batches=name == "static")
                wall, cpu, out = _timed(generator, method, questions, settings)
                times[name].append(wall)
                cpus[name].append(cpu)
                texts[name] = out
                print(f"  batch {size} rep {rep + 1} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU",
                      file=sys.stderr, flush=True)
        same = sum(a == b for a, b in zip(texts["static"], texts["continuous"], strict=True))
        rows.append((size, times, cpus, same))
    load_after = os.getloadavg()
    print("\n| batch | static wall s (min-max) | continuous wall s (min-max) | static/continuous "
          "wall (min-max) | CPU s static / continuous | answers/min continuous | same answers |")
    print("|---|---|---|---|---|---|---|")
    for size, times, cpus, same in rows:
        ratio = Spread.of(paired_ratios(times["static"], times["continuous"]))
        static, cont = Spread.of(times["static"]), Spread.of(times["continuous"])
        per_min = 60 * len(questions) / statistics.median(times["continuous"])
        print(f"| {size} | {_short(static, '.1f')} | {_short(cont, '.1f')} | {_short(ratio, '.2f')}x | "
              f"{statistics.median(cpus['static']):.0f} / {statistics.median(cpus['continuous']):.0f} | "
              f"{per_min:.1f} | {same}/{len(questions)} |")
    print(f"\nload average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
          f"(1 min; 5 min {load_after[1]:.1f})")


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        main()
