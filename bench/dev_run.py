"""What the generation benchmarks share: their command-line arguments, the embedded model
(fp32) with real dev questions, and the shipped step-by-step vectors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEV = "/work/shared/data/benchmarks/arc_challenge/ARC-Challenge-Dev.jsonl"


def add_dev_arguments(parser: argparse.ArgumentParser, *, questions: int) -> None:
    """--model, --dev, --format, --questions, --reps, --max-new-tokens, --threads."""
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dev", default=DEFAULT_DEV)
    parser.add_argument("--format", default="arc")
    parser.add_argument("--questions", type=int, default=questions)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=96, help="a tune's cap")
    parser.add_argument("--threads", type=int, default=2)


def load_dev_run(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """(model, tokenizer, the first `--questions` dev questions), torch on `--threads`."""
    torch.set_num_threads(args.threads)
    from kvsl.engine.models import load_model, resolve_ref
    from kvsl.formats.questions import load_benchmark

    loaded = load_model(resolve_ref(args.model), dtype=torch.float32)
    questions = [e.question for e in load_benchmark(args.dev, args.format)[: args.questions]]
    return loaded.model, loaded.tokenizer, questions


def step_by_step_vectors() -> Any:
    """The shipped step-by-step vectors (SystemExit when missing or stale)."""
    from kvsl.engine.artifact import load_artifact
    from kvsl.engine.shipped import find_shipped
    from kvsl.lang import load_plan

    path = find_shipped(load_plan(ROOT / "specs" / "step_by_step.kvs"))
    if path is None:
        raise SystemExit("the shipped step-by-step vectors are missing or stale")
    return load_artifact(path)
