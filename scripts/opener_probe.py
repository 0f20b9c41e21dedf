#!/usr/bin/env python
"""What the embedded model writes after a forced opener, on TRAIN questions (no steering).

    python scripts/opener_probe.py "[Fact]" "Premise ->" --max-new-tokens 64

Steering mostly sets the first token of an answer (docs/styles.md, tuning notes), so a
style moves only if the model, once it has written the opener, goes on in the style by
itself. This script tests that directly: each opener is fed after the chat prompt and the
offset token (generation's `suffix`, as a prefix would be), the model continues greedily
under a spec's decoding, and the opener plus continuation is scored with the spec's
style. It prints the mean score, how many arrows (→ -> =>) the model wrote itself (for
annotated deduction) and each answer's opening. Questions as `scripts/style_lab.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from style_evidence import decoding_for  # noqa: E402
from style_lab import train_questions  # noqa: E402

from kvsl.styles import score  # noqa: E402

ARROWS = ("→", "->", "=>")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("openers", nargs="+", help=r"forced openers (\n for a line break)")
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "annotated_deduction.kvs")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "benchmarks")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--per-benchmark", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--show", type=int, default=120, help="characters of each answer to print")
    args = parser.parse_args()

    import torch

    from kvsl.engine.generate import GenerationSettings, chat_prompt, decode, generate_batch
    from kvsl.engine.models import load_model
    from kvsl.engine.prompting import offset_token_id
    from kvsl.lang import load_plan

    torch.set_num_threads(args.threads)
    plan = load_plan(args.spec)
    loaded = load_model(plan.model, dtype=torch.float32)
    tokenizer = loaded.tokenizer
    questions = train_questions(args.data_dir, args.start, args.per_benchmark)
    ids = [chat_prompt(tokenizer, q.prompt, plan.contrast.system_prompt) for q in questions]
    penalty, ngram = decoding_for(plan, {})
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, repetition_penalty=penalty, no_repeat_ngram_size=ngram
    )
    offset = offset_token_id(tokenizer, plan.extract.offset_token)
    for raw in args.openers:
        opener = raw.replace("\\n", "\n")
        suffix = tokenizer.encode(opener, add_special_tokens=False)
        rows = generate_batch(
            loaded.model, tokenizer, ids, settings=settings, offset_id=offset, suffix=suffix
        )
        written = [decode(tokenizer, row) for row in rows]
        texts = [opener + w for w in written]
        scores = [score(t, plan.style) for t in texts]
        arrows = sum(w.count(a) for w in written for a in ARROWS)
        print(f"\n## {opener!r}: {plan.style} {statistics.fmean(scores):.2f}, arrows written {arrows}")
        for text, value in zip(texts, scores, strict=True):
            print(f"   {value:.2f} {text[: args.show]!r}")
    return 0


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        raise SystemExit(main())
