"""Benchmark 1: steered vs plain generation speed, side by side in one run.

Both sides generate from the same prompts (`T + [offset token]`), greedy, with exactly the
same number of new tokens (`min_new_tokens = max_new_tokens`: end-of-sequence is suppressed,
no stop strings). Plain is `model.generate` over `T + [o]`; steered is kvsl's path: prefill
`T`, add `c·S` to the cache, `model.generate` from `T + [o]` with that cache. Runs are
interleaved (plain/steered, then steered/plain, ...) so load on the machine hits both alike;
the ratio is taken within each repetition and reported as the median over repetitions with
its spread (IQR and range), never best-of or a ratio of sums, which one disturbed run sways.

    python bench/steer_speed.py                    # the embedded SmolLM2-135M (fp32, CPU)
    python bench/steer_speed.py --tiny             # a tiny random Llama (no model needed)
    python bench/steer_speed.py --artifact A.safetensors --prompts 8 --new-tokens 64

Goal: steered / plain time ratio <= 1.02 (the method's limit is 1.00: one extra cache add).
Without `--artifact` the vectors are random with the model's geometry; speed does not
depend on their values.
On a shared, loaded machine pass `--threads 1`: with more torch threads than free cores the
threads wait on each other (at load ≈ 17 on 2 cores, one extraction round took ~9 min with 2
threads against ~1.5 min with 1), and that wait, not the method, dominates the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

PROMPTS = [
    "Which of these is a renewable resource? A: coal B: wind C: oil D: natural gas",
    "A train travels 60 km in 1.5 hours. What is its average speed?",
    "Why does ice float on water?",
    "Is 91 a prime number?",
    "What happens to a puddle on a hot, sunny day?",
    "Tom has 3 apples and buys 5 more. He gives away 2. How many does he have?",
    "Which gas do plants absorb from the air? A: oxygen B: nitrogen C: carbon dioxide",
    "Why do we see lightning before we hear thunder?",
]


def _load(args: argparse.Namespace):
    if args.tiny:
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
        from tiny_models import make_tiny_model

        model, tokenizer = make_tiny_model("llama")
        return model, tokenizer, "tiny random Llama (2 layers, hidden 64)"
    from kvsl.engine.models import load_model, resolve_ref

    loaded = load_model(resolve_ref(args.model), dtype=torch.float32)
    return loaded.model, loaded.tokenizer, f"{args.model} (fp32)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="embedded name, HF id, dir or .gguf")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random Llama instead")
    parser.add_argument("--artifact", help="steer with these vectors (default: random ones)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--value", type=float, default=6.0, help="c_v on layers 1 and up")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from kvsl.engine.generate import GenerationSettings, chat_prompt
    from kvsl.engine.models import kv_geometry
    from kvsl.engine.offline import generate_texts
    from kvsl.engine.prompting import offset_token_id
    from kvsl.engine.steer import resolve_edit
    from kvsl.engine.vectors import SteeringVectors

    model, tokenizer, label = _load(args)
    geometry = kv_geometry(model)
    if args.artifact:
        from kvsl.engine.artifact import load_artifact

        vectors = load_artifact(args.artifact)
    else:
        gen = torch.Generator().manual_seed(0)
        shape = (geometry.kv_heads, geometry.head_dim)
        keys = {i: torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
        values = {i: torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
        vectors = SteeringVectors(keys, values, "\n")
    edit = resolve_edit(
        vectors, {layer: (0.0, args.value) for layer in range(1, geometry.num_layers)}, geometry
    )
    offset = offset_token_id(tokenizer, vectors.offset_token)
    prompts = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[: args.prompts]
    ids = [chat_prompt(tokenizer, p) for p in prompts]
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    new_tokens = args.new_tokens * len(ids)

    def timed(steer: bool) -> float:
        started = time.perf_counter()
        generate_texts(model, tokenizer, ids, settings=settings, offset_id=offset,
                       edit=edit if steer else None, batch_size=args.batch_size)
        return time.perf_counter() - started

    timed(False), timed(True)  # warm-up: first-call allocations, lazy imports
    times: dict[str, list[float]] = {"plain": [], "steered": []}
    for rep in range(args.reps):
        order = (False, True) if rep % 2 == 0 else (True, False)
        for steer in order:
            times["steered" if steer else "plain"].append(timed(steer))
        print(f"rep {rep + 1}/{args.reps}: plain {times['plain'][-1]:.2f}s, "
              f"steered {times['steered'][-1]:.2f}s", file=sys.stderr, flush=True)

    from timing import Spread, paired_ratios

    ratios = Spread.of(paired_ratios(times["steered"], times["plain"]))
    rate = {k: Spread.of([new_tokens / t for t in v]) for k, v in times.items()}
    result = {
        "model": label,
        "threads": torch.get_num_threads(),
        "prompts": len(ids),
        "new_tokens_per_prompt": args.new_tokens,
        "batch_size": args.batch_size,
        "reps": args.reps,
        "plain_tokens_per_s": rate["plain"].to_dict(),
        "steered_tokens_per_s": rate["steered"].to_dict(),
        "time_ratio_steered_over_plain": ratios.to_dict(),
    }
    print(f"model: {label}; {len(ids)} prompts x {args.new_tokens} new tokens, batch "
          f"{args.batch_size}, {args.reps} interleaved reps, {result['threads']} threads")
    print(f"plain   tokens/s, median [IQR, range]: {rate['plain'].format('.1f')}")
    print(f"steered tokens/s, median [IQR, range]: {rate['steered'].format('.1f')}")
    print(f"time ratio steered/plain within a rep, median [IQR, range]: {ratios.format('.3f')} "
          "(goal <= 1.02)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        main()
