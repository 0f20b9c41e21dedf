#!/usr/bin/env python
"""Quick steering experiments on TRAIN questions: one spec, several c_v, adherence per answer.

    python scripts/style_lab.py specs/causal_chain.kvs --values 4,6,8 --threads 2
    python scripts/style_lab.py /tmp/variant.kvs --values 6 --show 120

Loads the spec's model once, builds the spec's vectors (`kvsl.engine.build.build`, cached
by content like `kvsl build`), then answers the tuning questions greedily, plain and steered
at each `--values` c_v (on every layer the spec steers; c_k as in the spec), under the
spec's decoding (its `generate` repetition penalty and n-gram size, shared by plain and
steered). Prints, per setting, mean adherence (the style's scorer), mean novelty, looping
answers (a 4-word run 3+ times), the mean score under every other built-in scorer (a quick
specificity check) and the opening of each answer.

The tuning questions come from TRAIN splits only and never overlap
`scripts/style_evidence.py`'s held-out questions (dev splits): items `--start` ..
`--start + --per-benchmark - 1` of ARC-Challenge-Train, CommonsenseQA train and PIQA train,
and GSM8K train from item 1000 + `--start` (style_evidence uses GSM8K train's first items).
docs/styles.md ("Tuning notes") records what these runs found.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from style_evidence import (  # noqa: E402
    STYLE_SPECS,
    GenerationCache,
    Question,
    decoding_for,
    repetitive,
)

from kvsl.styles import novelty, score  # noqa: E402

TRAIN: tuple[tuple[str, str, int], ...] = (
    ("ARC train", "arc_challenge/ARC-Challenge-Train.jsonl", 0),
    ("CSQA train", "csqa/train_rand_split.jsonl", 0),
    ("PIQA train", "piqa/train.jsonl", 0),
    ("GSM8K train", "gsm8k/train.jsonl", 1000),
)


def train_questions(data_dir: Path, start: int, per_benchmark: int) -> list[Question]:
    from kvsl.formats.questions import load_benchmark

    questions: list[Question] = []
    for label, relative, base in TRAIN:
        first = base + start
        examples = load_benchmark(data_dir / relative, limit=first + per_benchmark)
        questions += [Question(label, e.id, e.question) for e in examples[first:]]
    return questions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--values", default="", help="c_v values, comma-separated (default: the spec's)")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "benchmarks")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--per-benchmark", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--layers", default="", help="FIRST..LAST: steer only these layers (default: the spec's)"
    )
    parser.add_argument(
        "--decoding", default="", help="REPETITION_PENALTY,NO_REPEAT_NGRAM_SIZE instead of the spec's"
    )
    parser.add_argument("--show", type=int, default=90, help="characters of each answer to print")
    parser.add_argument("--cache", default=str(ROOT / ".kvsl" / "style_lab.jsonl"))
    args = parser.parse_args()

    import torch
    from rich.console import Console

    from kvsl.engine.artifact import load_artifact
    from kvsl.engine.build import build
    from kvsl.engine.generate import GenerationSettings, chat_prompt
    from kvsl.engine.models import kv_geometry, load_model
    from kvsl.engine.offline import generate_texts
    from kvsl.engine.prompting import offset_token_id
    from kvsl.engine.steer import resolve_edit
    from kvsl.lang import load_plan

    torch.set_num_threads(args.threads)
    console = Console(stderr=True, highlight=False)
    plan = load_plan(args.spec)
    style = plan.style
    loaded = load_model(plan.model, dtype=torch.float32)
    geometry = kv_geometry(loaded.model)
    began = time.perf_counter()
    result = build(plan, loaded=loaded, console=console, progress=False)
    console.print(f"vectors {result.path.name} ({time.perf_counter() - began:.0f} s)")
    vectors = load_artifact(result.path)
    questions = train_questions(args.data_dir, args.start, args.per_benchmark)
    # The prefix variant starts the assistant turn with `extract.prefix` in plain and steered
    # generation alike (as `kvsl run` does); it is part of the answer, so it is scored with it.
    prefix = vectors.prefix
    ids = [chat_prompt(loaded.tokenizer, q.prompt, plan.contrast.system_prompt, prefix) for q in questions]
    offset = offset_token_id(loaded.tokenizer, vectors.offset_token)
    overrides = {}
    if args.decoding:
        penalty, ngram = args.decoding.split(",")
        overrides[style] = (float(penalty), int(ngram))
    decoding = decoding_for(plan, overrides)
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, repetition_penalty=decoding[0], no_repeat_ngram_size=decoding[1]
    )
    cache = GenerationCache(Path(args.cache) if args.cache else None)
    spec_coefficients = plan.steer.coefficients(loaded.geometry.num_layers)
    if args.layers:
        first, last = (int(x) for x in args.layers.split(".."))
        spec_coefficients = {
            layer: kv for layer, kv in spec_coefficients.items() if first <= layer <= last
        }
    values: list[float | None] = [float(v) for v in args.values.split(",") if v] or [None]

    def generate(edit: Any, edit_key: object) -> list[str]:
        key = GenerationCache.key("lab", plan.model.name, ids, offset, edit_key, settings)
        if (texts := cache.get(key)) is None:
            t0 = time.perf_counter()
            texts = generate_texts(
                loaded.model, loaded.tokenizer, ids, settings=settings, offset_id=offset,
                edit=edit, batch_size=args.batch_size,
            )
            cache.put(key, texts)
            console.print(f"  generated {len(ids)} in {time.perf_counter() - t0:.0f} s")
        return [prefix + t for t in texts] if prefix else texts

    def report(label: str, texts: list[str]) -> None:
        own = [score(t, style) for t in texts]
        others = {s: statistics.fmean(score(t, s) for t in texts) for s in STYLE_SPECS if s != style}
        loops = sum(repetitive(t) for t in texts)
        nov = statistics.fmean(novelty(t) for t in texts)
        print(f"\n## {label}: adherence {statistics.fmean(own):.2f}  novelty {nov:.2f}  loops {loops}")
        print("   others: " + ", ".join(f"{s[:8]} {v:.2f}" for s, v in others.items()))
        for q, t, s in zip(questions, texts, own, strict=True):
            opening = t[: args.show].replace("\n", "⏎")
            print(f"   {s:.2f} {'L' if repetitive(t) else ' '} [{q.benchmark[:4]}] {opening}")

    report(f"plain ({decoding})", generate(None, None))
    for value in values:
        coefficients = (
            spec_coefficients
            if value is None
            else {layer: (k, value) for layer, (k, _) in spec_coefficients.items()}
        )
        edit = resolve_edit(vectors, coefficients, geometry)
        edit_key = (vectors.manifest.get("vector_hash"), sorted(coefficients.items()))
        report(f"{style} {args.spec.name} c_v {value} layers {args.layers or 'spec'}", generate(edit, edit_key))
    return 0


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        raise SystemExit(main())
