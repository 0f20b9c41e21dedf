#!/usr/bin/env python
"""Write docs/results.md: plain vs CoT vs CAA vs cache steering on the embedded model.

    python scripts/make_results.py --data-root ../shared/data/benchmarks --limit 20 \
        --max-new-tokens 128 --batch-size 8

For each benchmark the first `--limit` test questions are scored (ARC-Challenge test,
CommonsenseQA dev, PIQA valid, GSM8K test; defaults 200/200/200/100). Hyperparameters
come from train/dev only: cache steering uses the spec's own settings (the paper's
reference: layers 1 and up, c_k = 0, c_v = 6), CAA's layer and multiplier are chosen on
the first `--dev-limit` questions of the dev split (ARC dev, CSQA train, PIQA train,
GSM8K train). A speed table times plain, cache steering and CAA side by side in one run.
Everything is cached under `--out`, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kvsl.eval.pipeline import EvalRequest, run_eval  # noqa: E402
from kvsl.eval.report import legend, markdown_table  # noqa: E402
from kvsl.lang.plan import GenerationSettings  # noqa: E402

# name → (test file, test labels, dev file, dev labels, default test size, paper row)
BENCHMARKS: dict[str, tuple[str, str | None, str, str | None, int, str]] = {
    "arc": (
        "arc_challenge/ARC-Challenge-Test.jsonl",
        None,
        "arc_challenge/ARC-Challenge-Dev.jsonl",
        None,
        200,
        "ARC-Challenge",
    ),
    "csqa": (
        "csqa/dev_rand_split.jsonl",
        None,
        "csqa/train_rand_split.jsonl",
        None,
        200,
        "CommonsenseQA",
    ),
    "piqa": (
        "piqa/valid.jsonl",
        "piqa/valid-labels.lst",
        "piqa/train.jsonl",
        "piqa/train-labels.lst",
        200,
        "PIQA",
    ),
    "gsm8k": ("gsm8k/test.jsonl", None, "gsm8k/train.jsonl", None, 100, "GSM8K"),
}
TEST_SPLIT = {"arc": "test", "csqa": "dev (as test)", "piqa": "valid (as test)", "gsm8k": "test"}
# Belitsky et al. (2025), Table 1, SmolLM2-360M-Instruct, greedy: baseline → cache steering.
PAPER = {"arc": ("24.32", "27.13"), "csqa": ("19.74", "22.11"), "piqa": ("50.38", "51.31")}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "benchmarks"))
    parser.add_argument("--spec", default=str(ROOT / "specs" / "step_by_step.kvs"))
    parser.add_argument("--benchmarks", default="arc,csqa,piqa,gsm8k")
    parser.add_argument("--methods", default="plain,cot,cache,caa")
    parser.add_argument("--limit", type=int, default=None, help="test questions per benchmark")
    parser.add_argument("--limits", default="", help="per benchmark, e.g. gsm8k=10,arc=40")
    parser.add_argument(
        "--dev-limit", type=int, default=20, help="dev questions for the CAA choice"
    )
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--caa-layers", default="10,15,20")
    parser.add_argument("--caa-multipliers", default="1,4")
    parser.add_argument(
        "--tune-values",
        default="",
        help="c_v values to choose cache steering's coefficient from on each dev split "
        "(e.g. 1,2,4,6,8), then evaluated on the test subset; empty: skip",
    )
    parser.add_argument(
        "--tune-dev-limit", type=int, default=200, help="dev questions for the c_v choice"
    )
    parser.add_argument("--speed-prompts", type=int, default=8)
    parser.add_argument("--speed-tokens", type=int, default=64)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: on a shared CPU, 2 threads waiting on each other were 5x slower)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"
    )
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--out", default=str(ROOT / ".kvsl" / "results"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    return parser.parse_args(argv)


def _pct(summary: Any) -> str:
    return f"{100 * summary.accuracy.rate:.1f}"


def main(argv: list[str] | None = None) -> int:
    from kvsl.base.interrupt import stop_on_interrupt

    args = _args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # Ctrl-C: exit 130 at once; every answer is already in the cache, a rerun resumes.
    with stop_on_interrupt(f"{args.out}/results.jsonl"):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    root = Path(args.data_root)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    decode = GenerationSettings(max_new_tokens=args.max_new_tokens)
    import torch

    torch.set_num_threads(args.threads)
    limits = _limits(args)
    sections: dict[str, dict[str, Any]] = {}
    # Speed first (short), then one benchmark at a time; the document is rewritten after
    # each, so a run stopped part-way still leaves every finished benchmark on disk.
    from kvsl.eval.session import open_context

    # One model and one set of vectors for the speed table and every benchmark.
    ctx = open_context(
        Path(args.spec),
        out_dir=Path(args.out),
        batch_size=args.batch_size,
        precision=args.precision,
        device=args.device,
        console=console,
    )
    speed = _speed(args, ctx, console) if args.speed_prompts > 0 else None
    for name in [b.strip() for b in args.benchmarks.split(",") if b.strip()]:
        test, labels, dev, dev_labels, default_n, _ = BENCHMARKS[name]
        request = EvalRequest(
            target=args.spec,
            benchmark=name,
            data=str(root / test),
            labels=str(root / labels) if labels else None,
            dev=str(root / dev),
            dev_labels=str(root / dev_labels) if dev_labels else None,
            methods=methods,
            limit=limits.get(name, default_n),
            dev_limit=args.dev_limit,
            batch_size=args.batch_size,
            decode=decode,
            caa_layers=tuple(int(v) for v in args.caa_layers.split(",")),
            caa_multipliers=tuple(float(v) for v in args.caa_multipliers.split(",")),
            out_dir=args.out,
            threads=args.threads,
            device=args.device,
            precision=args.precision,
        )
        console.rule(f"{name}: first {request.limit} {TEST_SPLIT[name]} questions")
        sections[name] = run_eval(request, console=console, context=ctx)
        if args.tune_values:
            sections[name]["tuned"] = _tuned(args, request, ctx, console)
        _write(args, sections, speed)
    console.print(f"wrote {args.doc}")
    return 0


def _tuned(args: argparse.Namespace, request: Any, ctx: Any, console: Any) -> dict[str, Any]:
    """c_v chosen on the dev split by a sweep, then plain vs cache (+CoT) on the test subset."""
    import dataclasses
    import shutil

    from kvsl.eval.pipeline import run_eval, run_sweep

    values = tuple(float(v) for v in args.tune_values.split(",") if v.strip())
    sweep = run_sweep(
        dataclasses.replace(
            request,
            methods=("cache",),
            sweeps=(("value", values),),
            dev_limit=args.tune_dev_limit,
        ),
        console=console,
        context=ctx,
    )
    best = float(sweep["best"]["value"])
    report = run_eval(
        dataclasses.replace(request, methods=("plain", "cache", "cache+cot"), value=best),
        console=console,
        context=ctx,
    )
    plot = Path(args.doc).parent / "img" / f"sweep-value-{request.benchmark}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sweep["plot"], plot)
    return {
        "values": values,
        "dev_examples": sweep["dev"]["examples"],
        "points": sweep["sweeps"]["value"],
        "best": best,
        "plot": str(plot),
        "_summaries": report["_summaries"],
    }


def _limits(args: argparse.Namespace) -> dict[str, int]:
    """Per-benchmark test sizes: `--limit` for all, `--limits gsm8k=10,...` per benchmark."""
    limits = {name: args.limit for name in BENCHMARKS} if args.limit is not None else {}
    for item in (args.limits or "").split(","):
        if item.strip():
            name, _, value = item.partition("=")
            limits[name.strip()] = int(value)
    return limits


def _write(args: argparse.Namespace, sections: dict[str, dict[str, Any]], speed: Any) -> None:
    from kvsl.base.atomic import write_text_atomically

    # Whole or not at all: a kill at the end must not leave docs/results.md cut short.
    write_text_atomically(args.doc, _markdown(args, sections, speed))

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != "_summaries"}
        return value

    raw = {k: plain(v) for k, v in sections.items()}
    write_text_atomically(
        Path(args.out) / "results-summary.json", json.dumps(raw, indent=2, default=str)
    )


def _speed(args: argparse.Namespace, ctx: Any, console: Any) -> dict[str, Any]:
    """plain, cache steering and CAA timed side by side on the first ARC test questions."""
    from kvsl.eval.methods import caa_method, cache_method, plain_method
    from kvsl.eval.session import caa_vectors, coefficients
    from kvsl.eval.speed import time_methods
    from kvsl.formats.questions import load_benchmark

    root = Path(args.data_root)
    questions = [
        e.question
        for e in load_benchmark(root / BENCHMARKS["arc"][0], "arc", limit=args.speed_prompts)
    ]
    caa = caa_vectors(ctx)
    layer = int(args.caa_layers.split(",")[0])
    methods = [
        plain_method(),
        cache_method(ctx.vectors, coefficients(ctx)),
        caa_method(caa, layer, float(args.caa_multipliers.split(",")[0])),
    ]
    console.print(
        f"timing {', '.join(m.name for m in methods)}: {len(questions)} prompts × {args.speed_tokens} tokens, {args.speed_repeats} repeats"
    )
    speeds = time_methods(
        ctx.generator, methods, questions, tokens=args.speed_tokens, repeats=args.speed_repeats
    )
    return {
        "speeds": speeds,
        "prompts": len(questions),
        "tokens": args.speed_tokens,
        "repeats": args.speed_repeats,
        "batch": args.batch_size,
        "device": ctx.device_name,
    }


def _markdown(
    args: argparse.Namespace, sections: dict[str, dict[str, Any]], speed: dict[str, Any] | None
) -> str:
    any_report = next(iter(sections.values()))
    plan = any_report["plan"] or {}
    contrast = plan.get("contrast", {})
    coeffs = any_report.get("coefficients") or {}
    values = sorted({tuple(v) for v in coeffs.values()})
    layers = sorted(int(k) for k in coeffs)
    steer = (
        f"layers {layers[0]}..{layers[-1]}, (c_k, c_v) = {values[0]}"
        if len(values) == 1 and layers
        else str(coeffs)
    )
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    from kvsl.eval.stats import accuracy

    n_small = min(int(r["benchmark"]["examples"]) for r in sections.values())
    wide = accuracy(n_small // 2, max(1, n_small))
    half_width = 100 * (wide.high - wide.low) / 2
    command = "python scripts/make_results.py " + " ".join(args.argv)
    model = any_report["model"]
    model_name = str(model.get("name"))
    described = (
        " (SmolLM2-135M-Instruct, the embedded default)" if model_name == "smollm2-135m" else ""
    )
    dtype = str(model.get("dtype", "")).replace("torch.", "")
    try:
        spec_shown = Path(args.spec).resolve().relative_to(ROOT)
    except ValueError:
        spec_shown = Path(args.spec)
    lines = [
        "# Results: cache steering vs plain, CoT and CAA on the embedded model",
        "",
        "Generated by `scripts/make_results.py`; do not edit by hand. Re-run it to regenerate:",
        "",
        f"    {command}",
        "",
        f"- Measured {now} on {_where(any_report)}, Python {platform.python_version()}, "
        f"torch {_version('torch')}, transformers {_version('transformers')}.",
        f"- Model: `{model_name}`{described}, {dtype}, greedy decoding, at most {args.max_new_tokens} new tokens, batch {args.batch_size}.",
        f"- Style: `{plan.get('style')}` from `{spec_shown}` with the project's own "
        f"bundled traces: N = {contrast.get('pairs')} pairs, k = {contrast.get('shots')} shots "
        f"({contrast.get('selection')}, seed {contrast.get('seed')}); cache steering {steer}, the "
        "spec's settings as written (the paper's reference), not tuned on any test set.",
        f"- CAA: the mean residual difference at the last token from the same contrast pairs, "
        f"its layer and multiplier chosen on the first {args.dev_limit} questions of each "
        "benchmark's dev/train split (grid below).",
        '- CoT: "Let\'s think step by step." as the start of the assistant turn.',
        f"- **Subset sizes are small** (see each table): with n = {n_small} and accuracy near "
        f"50% a 95% interval is about ±{half_width:.0f} points wide, so differences of a few "
        "points are noise. The p column is an exact McNemar test against plain on the same "
        "questions.",
        "",
        "## The paper's figures (SmolLM2-360M-Instruct, full test sets, greedy)",
        "",
        "| benchmark | baseline | cache steering |",
        "|---|---|---|",
        *[f"| {BENCHMARKS[k][5]} | {a} | {b} |" for k, (a, b) in PAPER.items()],
        "",
        "kvsl's numbers below are for the smaller SmolLM2-135M-Instruct on small subsets, so "
        "they are not directly comparable; at this size every multiple-choice accuracy is "
        "expected near chance (25% ARC, 20% CSQA, 50% PIQA).",
        "",
        "## Accuracy overview (%)",
        "",
    ]
    method_names = [s.method for s in any_report["_summaries"]]
    lines.append("| benchmark | n | " + " | ".join(method_names) + " |")
    lines.append("|---|---|" + "---|" * len(method_names))
    for name, report in sections.items():
        by = {s.method: s for s in report["_summaries"]}
        cells = [_pct(by[m]) if m in by else "–" for m in method_names]
        lines.append(
            f"| {BENCHMARKS[name][5]} | {report['benchmark']['examples']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", legend(), ""]
    for name, report in sections.items():
        bench = report["benchmark"]
        lines += [
            f"## {BENCHMARKS[name][5]}: first {bench['examples']} {TEST_SPLIT[name]} questions",
            "",
            markdown_table(report["_summaries"]),
            "",
        ]
        caa = report.get("caa")
        if caa:
            grid = ", ".join(
                f"layer {p['parameter'].split()[-1]} × {p['value']:g}: {100 * p['accuracy']['rate']:.0f}%"
                for p in caa.get("grid", [])
            )
            lines += [
                f"CAA chosen on {caa.get('dev_examples', '?')} dev questions: layer {caa['layer']}, "
                f"multiplier {caa['multiplier']:g} (dev accuracy per grid point: {grid}).",
                "",
            ]
    if speed is not None:
        speeds = speed["speeds"]
        base = speeds[0]
        lines += [
            "## Speed: ms per generated token, measured in one run",
            "",
            f"The same {speed['prompts']} ARC prompts, batch {min(speed['prompts'], speed['batch'])}, exactly "
            f"{speed['tokens']} new tokens each, methods interleaved, median of "
            f"{speed['repeats']} repeats (prefill included).",
            "",
            "| method | ms/token | min–max | ratio to plain |",
            "|---|---|---|---|",
            *[
                f"| {s.method} | {s.ms_per_token:.2f} | {s.spread[0]:.2f}–{s.spread[1]:.2f} | {s.ratio_to(base):.3f} |"
                for s in speeds
            ],
            "",
        ]
    if any("tuned" in r for r in sections.values()):
        lines += _tuned_markdown(args, sections)
    lines += ["## What this shows", "", *_observations(sections, speed), ""]
    return "\n".join(lines)


def _tuned_markdown(args: argparse.Namespace, sections: dict[str, dict[str, Any]]) -> list[str]:
    """The section on cache steering with its value coefficient chosen on the dev split."""
    lines = [
        "## Cache steering with c_v chosen on the dev split",
        "",
        "The spec's c_v = 6 is the paper's reference value, not tuned for this model. Here c_v "
        f"is chosen per benchmark from {args.tune_values} by accuracy on the first "
        f"{args.tune_dev_limit} questions of the dev/train split (layers and c_k as in the "
        "spec; ties go to the smaller value), then evaluated on the same test questions.",
        "",
        "| benchmark | dev accuracy per c_v | chosen | plain | cache | Δ (p) | cache+cot | Δ (p) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    doc_dir = Path(args.doc).parent
    plots = []
    for name, report in sections.items():
        tuned = report.get("tuned")
        if not tuned:
            continue
        by = {s.method: s for s in tuned["_summaries"]}
        dev = ", ".join(
            f"{p['value']:g}: {100 * p['accuracy']['rate']:.0f}%" for p in tuned["points"]
        )
        cells = []
        for method in ("cache", "cache+cot"):
            s = by.get(method)
            if s is None or s.versus_plain is None:
                cells += ["–", "–"]
                continue
            diff = 100 * (s.accuracy.rate - by["plain"].accuracy.rate)
            cells += [_pct(s), f"{diff:+.1f} ({s.versus_plain.p_mcnemar:.2f})"]
        lines.append(
            f"| {BENCHMARKS[name][5]} | {dev} (n = {tuned['dev_examples']}) | "
            f"{tuned['best']:g} | {_pct(by['plain'])} | " + " | ".join(cells) + " |"
        )
        plot = Path(tuned["plot"])
        try:
            plots.append(f"![{name} c_v sweep]({plot.resolve().relative_to(doc_dir.resolve())})")
        except ValueError:
            plots.append(f"![{name} c_v sweep]({plot})")
    return [*lines, "", *plots, ""]


def _observations(sections: dict[str, dict[str, Any]], speed: dict[str, Any] | None) -> list[str]:
    """Plain statements read off the numbers (no claim the numbers do not support)."""
    out = []
    for name, report in sections.items():
        by = {s.method: s for s in report["_summaries"]}
        plain, cache = by.get("plain"), by.get("cache")
        if plain is None or cache is None:
            continue
        diff = 100 * (cache.accuracy.rate - plain.accuracy.rate)
        p = cache.versus_plain.p_mcnemar if cache.versus_plain else float("nan")
        verdict = "higher than" if diff > 0 else "lower than" if diff < 0 else "the same as"
        out.append(
            f"- {BENCHMARKS[name][5]}: cache steering scored {verdict} plain "
            f"({_pct(plain)}% → {_pct(cache)}%, {diff:+.1f} points, McNemar p = {p:.2f}); "
            f"mean response {plain.mean_chars:.0f} → {cache.mean_chars:.0f} characters"
            + (
                f", style adherence {plain.style:.2f} → {cache.style:.2f}."
                if plain.style is not None and cache.style is not None
                else "."
            )
        )
        others = [
            f"{m} {_pct(by[m])}% ({100 * (by[m].accuracy.rate - plain.accuracy.rate):+.1f}, "
            f"p = {by[m].versus_plain.p_mcnemar:.2f})"
            for m in ("cot", "cache+cot", "caa")
            if m in by and by[m].versus_plain is not None
        ]
        if others:
            out.append(f"  Against the same plain baseline: {'; '.join(others)}.")
        forced = max(s.forced_share for s in by.values())
        if forced > 0.2:
            out.append(
                f"  Up to {100 * forced:.0f}% of a method's answers had no readable final answer "
                + (
                    "and were decided by the model's forced choice (see `forced`)."
                    if name != "gsm8k"
                    else "(no number at all)."
                )
            )
    if speed is not None:
        s = {x.method: x for x in speed["speeds"]}
        if "plain" in s and "cache" in s and "caa" in s:
            out.append(
                f"- Speed: cache steering ran at {s['cache'].ratio_to(s['plain']):.3f}× and CAA at "
                f"{s['caa'].ratio_to(s['plain']):.3f}× plain's time per token (cache steering "
                "makes one edit before decoding; CAA runs a hook at every decoding step)."
                + (
                    " On a CPU shared with other work these timings are noisy: compare the "
                    "min–max columns."
                    if not str(speed.get("device", "cpu")).startswith("cuda")
                    else f" Timed on {speed['device']}, where a 135M model's decoding step is "
                    "bound by kernel launches, not arithmetic."
                )
            )
    return out


def _where(report: dict[str, Any]) -> str:
    """The machine the numbers come from: a GPU by name, else the CPU and its cores."""
    import os

    device = str(report.get("device") or "cpu")
    if device.startswith("cuda"):
        return f"one GPU, {device}, with {os.cpu_count() or '?'} CPU cores"
    return f"{platform.machine()} CPU, {os.cpu_count() or '?'} cores shared with other work"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
