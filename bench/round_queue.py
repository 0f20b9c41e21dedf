"""Benchmark: one queue for a whole tune round against one queue per setting.

A `kvsl tune` round answers the same dev questions with several settings and plain. With
one queue per setting, the batch drains at the end of every setting: its last long answers
(often at the cap) decode in a nearly empty batch. With one queue for the round
(`Generator.generate_jobs`, what tune and eval do now) it drains once. Both arms answer
the same questions with the same methods, on the embedded model (fp32, CPU): plain and the
shipped step-by-step vectors at each `--values` c_v, repetition penalty 1.1, `--max-new-tokens`
(a tune's 96). Repetitions alternate the order of the arms; the table gives each arm's median
wall and CPU time with the spread (min-max) and the median of the paired ratios per setting /
one queue (> 1: one queue is faster). Greedy answers must be the same; mismatches are counted.

    python bench/round_queue.py --questions 24 --values 3,5,7 --reps 3 --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dev_run import add_dev_arguments, load_dev_run, step_by_step_vectors
from timing import Spread, paired_ratios


def _methods(values: list[float]) -> list:
    from kvsl.eval.methods import cache_method, plain_method

    vectors = step_by_step_vectors()
    steered = [
        replace(
            cache_method(vectors, {layer: (0.0, v) for layer in range(1, vectors.num_layers)}),
            name=f"c_v={v:g}",
        )
        for v in values
    ]
    return [plain_method(), *steered]


def _run(generator, jobs, together: bool) -> tuple[float, float, list[list[str]]]:
    wall, cpu = time.perf_counter(), os.times()
    if together:
        answers = generator.generate_jobs(jobs)
    else:
        answers = [generator.generate(j.method, j.questions, j.settings) for j in jobs]
    after = os.times()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    return time.perf_counter() - wall, used, [[g.text for g in a] for a in answers]


def _short(spread: Spread, spec: str) -> str:
    return f"{spread.median:{spec}} ({spread.low:{spec}}-{spread.high:{spec}})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dev_arguments(parser, questions=24)
    parser.add_argument("--values", default="3,5,7", help="c_v of the steered settings")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from kvsl.eval.methods import Generator, Job
    from kvsl.lang.plan import GenerationSettings

    model, tokenizer, questions = load_dev_run(args)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, repetition_penalty=1.1)
    methods = _methods([float(v) for v in args.values.split(",")])
    jobs = [Job(m, questions, settings) for m in methods]
    generator = Generator(model, tokenizer, batch_size=args.batch_size)
    generator.generate(methods[0], questions[:2], replace(settings, max_new_tokens=2))  # warm-up
    before = os.getloadavg()
    print(f"{args.model} fp32, {args.threads} thread(s), {len(questions)} questions × "
          f"{len(methods)} methods (plain, c_v {args.values}), batch {args.batch_size}, "
          f"max {args.max_new_tokens} new tokens, {args.reps} reps; load average "
          f"{before[0]:.1f} {before[1]:.1f} {before[2]:.1f}", flush=True)  # fmt: skip
    times: dict[str, list[float]] = {"per setting": [], "one queue": []}
    cpus: dict[str, list[float]] = {"per setting": [], "one queue": []}
    texts: dict[str, list[list[str]]] = {}
    for rep in range(args.reps):
        arms = ("per setting", "one queue") if rep % 2 == 0 else ("one queue", "per setting")
        for arm in arms:
            wall, cpu, out = _run(generator, jobs, together=arm == "one queue")
            times[arm].append(wall)
            cpus[arm].append(cpu)
            texts[arm] = out
            print(f"  rep {rep + 1} {arm}: {wall:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr,
                  flush=True)  # fmt: skip
    after = os.getloadavg()
    pairs = zip(texts["per setting"], texts["one queue"], strict=True)
    same = sum(a == b for x, y in pairs for a, b in zip(x, y, strict=True))
    total = len(questions) * len(methods)
    ratio = Spread.of(paired_ratios(times["per setting"], times["one queue"]))
    cpu_ratio = Spread.of(paired_ratios(cpus["per setting"], cpus["one queue"]))
    print("\n| arm | wall s (min-max) | CPU s (min-max) | answers/min |")
    print("|---|---|---|---|")
    for arm in times:
        wall = Spread.of(times[arm])
        print(f"| {arm} | {_short(wall, '.1f')} | {_short(Spread.of(cpus[arm]), '.1f')} | "
              f"{60 * total / wall.median:.1f} |")  # fmt: skip
    print(f"\nper setting ÷ one queue: wall {_short(ratio, '.2f')}x, CPU {_short(cpu_ratio, '.2f')}x; "
          f"same answers {same}/{total}; load average before {before[0]:.1f}, after {after[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        main()
