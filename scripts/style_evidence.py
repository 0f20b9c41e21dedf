#!/usr/bin/env python
"""Write docs/style_evidence.md: style adherence of plain vs steered output, per built-in style.

    python scripts/style_evidence.py                       # 20 questions, 5 styles (CPU: minutes)
    python scripts/style_evidence.py --per-benchmark 1 --max-new-tokens 32 --styles step-by-step
    python scripts/style_evidence.py --decoding causal-chain=1.2,0   # other decoding for a style

On the embedded model (the specs' `model = "smollm2-135m"`, loaded once and reused for
every build and generation), for each built-in spec in `specs/`:

1. build its vectors (`kvsl.engine.build.build`; an up-to-date artifact is reused);
2. generate greedily for held-out questions: the first `--per-benchmark` items of each
   dev/validation split (ARC-Challenge-Dev, CommonsenseQA dev, PIQA valid, GSM8K train;
   never a test split), formatted as kvsl formats benchmark questions (`Example.question`),
   skipping any whose question text a bundled trace was written for;
3. plain (`T + [o]` without the edit, as `kvsl run --compare` does) and steered with the
   spec's own coefficients, both under the style's decoding (repetition penalty and
   no-repeat n-gram size: the spec's `generate` block when it has them, else
   `DECODING` below, else `--decoding`); plain is generated once per (system prompt,
   offset token, decoding) and shared by the styles that agree on them;
4. score every output with every style's scorer (`kvsl.styles.score`) and its novelty
   (`kvsl.styles.novelty`).

The markdown reports, per style, mean adherence plain vs steered with a 95% paired
bootstrap interval of the difference, novelty and looping answers plain vs steered, mean
response length, the 5×5 specificity matrix (rows: the style steered with; columns: each
style's scorer; the diagonal should be each row's largest), the issue's goals per style,
and example outputs. `--sensitivity STYLE=V1,V2` adds runs at other value coefficients
(c_v on every steered layer; c_k as in the spec), without touching the specs.

Every generation is cached in `--cache` (JSON lines keyed by the prompts, the edit's
vectors and coefficients, and the decoding), so an interrupted or repeated run resumes
instead of regenerating; `--cache ""` turns this off.

This is an evidence script, not a test: it needs the benchmark files under `--data-dir`
and the embedded model, and the test suite never runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kvsl  # noqa: E402
from kvsl.base import jsonl as kvsl_jsonl  # noqa: E402
from kvsl.styles import novelty, score  # noqa: E402

# Built-in style → its spec file, in the order docs/styles.md lists them.
STYLE_SPECS: dict[str, str] = {
    "step-by-step": "step_by_step.kvs",
    "strategy-and-execute": "strategy_execute.kvs",
    "causal-chain": "causal_chain.kvs",
    "annotated-deduction": "annotated_deduction.kvs",
    "analogical": "analogical.kvs",
}

# (label, path under --data-dir): dev/validation splits only, never a test split.
BENCHMARKS: tuple[tuple[str, str], ...] = (
    ("ARC-Challenge dev", "arc_challenge/ARC-Challenge-Dev.jsonl"),
    ("CommonsenseQA dev", "csqa/dev_rand_split.jsonl"),
    ("PIQA valid", "piqa/valid.jsonl"),
    ("GSM8K train", "gsm8k/train.jsonl"),
)

RESAMPLES = 10_000

# Decoding per style: (repetition_penalty, no_repeat_ngram_size), applied to plain and
# steered alike. Used when the spec's `generate` block does not set them (the keys are
# being added to the language); found on train questions, never on the questions below
# (see docs/styles.md, "Tuning notes").
DECODING: dict[str, tuple[float, int]] = {
    "step-by-step": (1.1, 0),
    "strategy-and-execute": (1.1, 0),
    "causal-chain": (1.1, 0),
    "annotated-deduction": (1.1, 0),
    "analogical": (1.1, 0),
}


@dataclass(frozen=True)
class Question:
    """One held-out prompt: where it comes from and the user turn the model sees."""

    benchmark: str
    id: str
    prompt: str


@dataclass(frozen=True)
class Paired:
    """Steered minus plain over the same questions: mean difference and its 95% interval."""

    difference: float
    low: float
    high: float
    better: int
    same: int
    worse: int


def paired_bootstrap(plain: Sequence[float], steered: Sequence[float], seed: int = 0) -> Paired:
    """Mean of `steered − plain` with a 95% percentile bootstrap interval over questions.

    >>> p = paired_bootstrap([0.0, 0.0, 0.5], [1.0, 1.0, 0.5])
    >>> round(p.difference, 3), (p.better, p.same, p.worse)
    (0.667, (2, 1, 0))
    """
    deltas = [s - p for p, s in zip(plain, steered, strict=True)]
    n = len(deltas)
    counts = (
        sum(d > 1e-9 for d in deltas),
        sum(abs(d) <= 1e-9 for d in deltas),
        sum(d < -1e-9 for d in deltas),
    )
    if n == 0:
        return Paired(math.nan, math.nan, math.nan, *counts)
    observed = statistics.fmean(deltas)
    rng = random.Random(seed)
    samples = sorted(statistics.fmean(rng.choices(deltas, k=n)) for _ in range(RESAMPLES))
    low = samples[math.floor(0.025 * (RESAMPLES - 1))]
    high = samples[math.ceil(0.975 * (RESAMPLES - 1))]
    return Paired(observed, low, high, *counts)


def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """`"0.42 ± 0.13"` (sample sd; 0 for a single value).

    >>> mean_sd([0.5, 0.3]), mean_sd([280, 300], digits=0)
    ('0.40 ± 0.14', '290 ± 14')
    """
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def repetitive(text: str, n: int = 4, times: int = 3) -> bool:
    """Whether some run of `n` words occurs `times` or more: degenerate looping output.

    >>> repetitive("a b c d " * 3), repetitive("one two three four five six")
    (True, False)
    """
    words = text.split()
    grams: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        grams[gram] = grams.get(gram, 0) + 1
        if grams[gram] >= times:
            return True
    return False


def _normal(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def trace_questions(specs_dir: Path) -> set[str]:
    """Normalized question text of every bundled trace (so that none is used as held-out)."""
    seen: set[str] = set()
    for path in sorted((specs_dir / "traces").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if isinstance(record.get("question"), str):
                    seen.add(_normal(record["question"]))
    return seen


def held_out_questions(data_dir: Path, per_benchmark: int, exclude: set[str]) -> list[Question]:
    """The first `per_benchmark` items of each dev split whose stem no trace was written for."""
    from kvsl.formats.questions import load_benchmark

    questions: list[Question] = []
    for label, relative in BENCHMARKS:
        path = data_dir / relative
        if not path.is_file():
            sys.exit(f"error: benchmark file `{path}` is missing (set --data-dir)")
        # A few spare items in case a trace question has to be skipped.
        examples = load_benchmark(path, limit=per_benchmark + 20)
        kept = [e for e in examples if _normal(e.stem) not in exclude][:per_benchmark]
        if len(kept) < per_benchmark:
            sys.exit(f"error: only {len(kept)} held-out questions in `{path}`")
        questions += [Question(label, e.id, e.question) for e in kept]
    return questions


def parse_sensitivity(items: Sequence[str]) -> dict[str, list[float]]:
    """`["step-by-step=3,10"]` → `{"step-by-step": [3.0, 10.0]}`.

    >>> parse_sensitivity(["analogical=3,10"])
    {'analogical': [3.0, 10.0]}
    """
    extra: dict[str, list[float]] = {}
    for item in items:
        style, _, values = item.partition("=")
        if style not in STYLE_SPECS or not values:
            sys.exit(f"error: --sensitivity wants STYLE=V1,V2 with a built-in style, got `{item}`")
        extra[style] = [float(v) for v in values.split(",") if v.strip()]
    return extra


def parse_decoding(items: Sequence[str]) -> dict[str, tuple[float, int]]:
    """`["causal-chain=1.2,0"]` → `{"causal-chain": (1.2, 0)}` (penalty, no-repeat n-gram size).

    >>> parse_decoding(["analogical=1.15,6"])
    {'analogical': (1.15, 6)}
    """
    chosen: dict[str, tuple[float, int]] = {}
    for item in items:
        style, _, values = item.partition("=")
        parts = values.split(",")
        if style not in STYLE_SPECS or len(parts) != 2:
            sys.exit(f"error: --decoding wants STYLE=PENALTY,NGRAM with a built-in style, got `{item}`")
        chosen[style] = (float(parts[0]), int(parts[1]))
    return chosen


def decoding_for(plan: Any, overrides: dict[str, tuple[float, int]]) -> tuple[float, int]:
    """(repetition_penalty, no_repeat_ngram_size): `--decoding`, else the spec's, else `DECODING`.

    The spec's `generate` block is read only once the language has the two keys.
    """
    if plan.style in overrides:
        return overrides[plan.style]
    penalty, ngram = DECODING.get(plan.style, (1.0, 0))
    penalty = getattr(plan.generate, "repetition_penalty", None) or penalty
    ngram = getattr(plan.generate, "no_repeat_ngram_size", None) or ngram
    return float(penalty), int(ngram)


class GenerationCache:
    """Generated texts by a key of everything that decides them (JSON lines, append-only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.texts: dict[str, list[str]] = {}
        self.warned: set[int] = set()  # bad lines already reported
        self.reload()

    def reload(self) -> None:
        """Read what is in the file now (several runs with other `--styles` may share it).

        A line that is not a record (torn by a kill in the middle of a long append) is
        skipped with a KVS613 warning, once, and its texts are generated again: it ended
        the rerun with a traceback.
        """
        if self.path is None or not self.path.is_file():
            return
        text = self.path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = kvsl_jsonl.loads(line)
                key, texts = record["key"], record["texts"]
                if not isinstance(key, str) or not isinstance(texts, list):
                    raise TypeError("a record needs `key` and `texts`")
            except (json.JSONDecodeError, KeyError, TypeError):
                if number not in self.warned:
                    self.warned.add(number)
                    print(
                        f"warning[KVS613]: line {number} of `{self.path}` is not a valid record;"
                        " those texts are generated again",
                        file=sys.stderr,
                    )
                continue
            self.texts[key] = texts

    def get(self, key: str) -> list[str] | None:
        if key not in self.texts:
            self.reload()
        return self.texts.get(key)

    @staticmethod
    def key(*parts: object) -> str:
        blob = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def put(self, key: str, texts: list[str]) -> None:
        self.texts[key] = texts
        if self.path is not None:
            # fsynced, and a torn last line stays one bad line instead of swallowing this one
            kvsl_jsonl.append_jsonl(
                self.path, [json.dumps({"key": key, "texts": texts}, ensure_ascii=False)]
            )


def _cell(text: str, limit: int = 200) -> str:
    """Text for one markdown table cell: first `limit` characters, newlines shown as ⏎."""
    short = text[:limit] + ("…" if len(text) > limit else "")
    return short.replace("|", "\\|").replace("\n", " ⏎ ").strip()


def _describe(coefficients: dict[int, tuple[float, float]]) -> str:
    layers = sorted(coefficients)
    pairs = sorted(set(coefficients.values()))
    where = f"layers {layers[0]}..{layers[-1]}" if layers else "no layers"
    return f"{where}, " + "; ".join(f"c_k = {k:g}, c_v = {v:g}" for k, v in pairs)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "benchmarks"
    )
    parser.add_argument("--per-benchmark", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--styles",
        default=",".join(STYLE_SPECS),
        help="comma-separated built-in styles (default: all five)",
    )
    parser.add_argument(
        "--sensitivity",
        action="append",
        default=[],
        metavar="STYLE=V1,V2",
        help="also steer STYLE with these value coefficients (c_v on every steered layer)",
    )
    parser.add_argument(
        "--decoding",
        action="append",
        default=[],
        metavar="STYLE=PENALTY,NGRAM",
        help="decode STYLE (plain and steered) with this repetition penalty and no-repeat n-gram size",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's own)"
    )
    parser.add_argument("--specs-dir", type=Path, default=ROOT / "specs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "style_evidence.md")
    parser.add_argument(
        "--raw", type=Path, default=None, help="also write every output as JSON lines"
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="also write each style's figures as JSON (specs/vectors/evidence.json: `kvsl styles`)",
    )
    parser.add_argument(
        "--cache",
        default=str(ROOT / ".kvsl" / "style_evidence.jsonl"),
        help='generation cache, so that a rerun resumes ("" for none)',
    )
    args = parser.parse_args(argv)
    args.style_list = [s.strip() for s in args.styles.split(",") if s.strip()]
    unknown = [s for s in args.style_list if s not in STYLE_SPECS]
    if unknown:
        parser.error(f"unknown style(s) {unknown}; choose from {list(STYLE_SPECS)}")
    args.extra = parse_sensitivity(args.sensitivity)
    for style in args.extra:
        if style not in args.style_list:
            parser.error(f"--sensitivity names `{style}`, which is not in --styles")
    args.chosen_decoding = parse_decoding(args.decoding)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    styles, sensitivity = args.style_list, args.extra

    import torch
    from rich.console import Console

    from kvsl.engine.artifact import check_compatible, load_artifact
    from kvsl.engine.build import build
    from kvsl.engine.generate import GenerationSettings, chat_prompt
    from kvsl.engine.models import kv_geometry, load_model
    from kvsl.engine.offline import generate_texts
    from kvsl.engine.prompting import offset_token_id
    from kvsl.engine.steer import resolve_edit
    from kvsl.lang import load_plan

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(stderr=True, highlight=False)
    started = time.perf_counter()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    questions = held_out_questions(
        args.data_dir, args.per_benchmark, trace_questions(args.specs_dir)
    )
    console.print(f"{len(questions)} held-out questions, styles {styles}")

    plans = {style: load_plan(args.specs_dir / STYLE_SPECS[style]) for style in styles}
    for style, plan in plans.items():
        if plan.style != style:
            sys.exit(f"error: `{STYLE_SPECS[style]}` declares style `{plan.style}`, not `{style}`")
    models = {plan.model.name for plan in plans.values()}
    if len(models) != 1:
        sys.exit(f"error: the specs name several models {sorted(models)}; this script loads one")
    first = next(iter(plans.values()))
    loaded = load_model(first.model, dtype=torch.float32)
    model, tokenizer = loaded.model, loaded.tokenizer
    args.model_name, args.device = first.model.name, str(loaded.device)
    geometry = kv_geometry(model)
    num_layers = loaded.geometry.num_layers
    cache = GenerationCache(Path(args.cache) if args.cache else None)

    def run(
        ids: list[list[int]], offset: int, edit: Any, edit_key: object, decoding: tuple[float, int], what: str
    ) -> tuple[list[str], float]:
        # Greedy, no stop strings; the decoding penalties are shared by plain and steered.
        settings = GenerationSettings(
            max_new_tokens=args.max_new_tokens,
            repetition_penalty=decoding[0],
            no_repeat_ngram_size=decoding[1],
        )
        key = GenerationCache.key(args.model_name, ids, offset, edit_key, settings)
        if (cached := cache.get(key)) is not None:
            console.print(f"  {what}: {len(ids)} generations from the cache")
            return cached, 0.0
        began = time.perf_counter()
        texts = generate_texts(
            model, tokenizer, ids, settings=settings, offset_id=offset, edit=edit,
            batch_size=args.batch_size,
        )
        seconds = time.perf_counter() - began
        cache.put(key, texts)
        console.print(f"  {what}: {len(ids)} generations in {seconds:.0f} s")
        return texts, seconds

    # Plain outputs depend only on (system prompt, offset token, decoding): generate each once.
    plain_cache: dict[tuple[str | None, str, tuple[float, int]], list[str]] = {}
    conditions: list[dict[str, Any]] = []  # one per steered run
    build_seconds: dict[str, float] = {}
    prepared: dict[str, tuple[Any, list[list[int]], int, tuple[str | None, str, tuple[float, int]], Any]] = {}

    def steer(style: str, value: float | None) -> None:
        plan = plans[style]
        vectors, ids, offset, key, result = prepared[style]
        spec_coefficients = plan.steer.coefficients(num_layers)
        coefficients = (
            spec_coefficients
            if value is None
            else {layer: (k, float(value)) for layer, (k, _) in spec_coefficients.items()}
        )
        edit = resolve_edit(vectors, coefficients, geometry)
        label = "spec" if value is None else f"c_v = {value:g}"
        edit_key = (vectors.manifest.get("vector_hash"), sorted(coefficients.items()))
        texts, seconds = run(
            ids, offset, None if edit.is_empty else edit, edit_key, key[2], f"{style} ({label})"
        )
        conditions.append(
            {
                "style": style,
                "label": label,
                "coefficients": _describe(coefficients),
                "decoding": key[2],
                "plain": plain_cache[key],
                "steered": texts,
                "seconds": seconds,
                "shots": plan.contrast.shots,
                "pairs": vectors.manifest.get("pairs"),
                "artifact": result.path.name,
            }
        )
        # Written after every run, so that an interrupted run still leaves its figures.
        write(args, questions, conditions, styles, build_seconds, time.perf_counter() - started, date)

    for style, plan in plans.items():
        precision = None if plan.extract.precision == "fp32" else "fp32"  # reuse the fp32 model
        result = build(plan, loaded=loaded, console=console, precision=precision, progress=False)
        build_seconds[style] = result.seconds
        vectors = load_artifact(result.path)
        check_compatible(vectors, loaded)
        system = plan.contrast.system_prompt
        offset = offset_token_id(tokenizer, vectors.offset_token)
        ids = [chat_prompt(tokenizer, q.prompt, system) for q in questions]
        decoding = decoding_for(plan, args.chosen_decoding)
        key = (system, vectors.offset_token, decoding)
        if key not in plain_cache:
            what = f"plain (repetition_penalty {decoding[0]:g}, no_repeat_ngram_size {decoding[1]})"
            plain_cache[key], _ = run(ids, offset, None, None, decoding, what)
        prepared[style] = (vectors, ids, offset, key, result)
        steer(style, None)
    # Other coefficients last: the spec runs are the headline figures.
    for style, values in sensitivity.items():
        for value in values:
            steer(style, value)
    wall = time.perf_counter() - started
    write(args, questions, conditions, styles, build_seconds, wall, date)
    console.print(f"wrote {args.out} ({wall:.0f} s)")
    print(main_table(conditions))
    print(specificity(conditions))
    return 0


def write(
    args: argparse.Namespace,
    questions: list[Question],
    conditions: list[dict[str, Any]],
    scorers: list[str],
    build_seconds: dict[str, float],
    wall: float,
    date: str,
) -> None:
    """Write the markdown page (and the raw outputs when `--raw` is given)."""
    from kvsl.base.atomic import write_text_atomically

    if args.raw is not None:
        rows: list[str] = []
        for cond in conditions:
            for q, p, s in zip(questions, cond["plain"], cond["steered"], strict=True):
                row = {"style": cond["style"], "setting": cond["label"], "benchmark": q.benchmark,
                       "id": q.id, "plain": p, "steered": s,
                       "plain_score": score(p, cond["style"]), "steered_score": score(s, cond["style"])}
                rows.append(json.dumps(row, ensure_ascii=False) + "\n")
        write_text_atomically(args.raw, "".join(rows))  # whole or not at all, as the page
    text = render(args, questions, conditions, scorers, build_seconds, wall, date)
    write_text_atomically(args.out, text)  # a kill at the end must not cut the doc short
    if args.summary is not None:
        figures = summary(args, questions, conditions)
        write_text_atomically(args.summary, json.dumps(figures, indent=2, sort_keys=True) + "\n")


def _decoding(cond: dict[str, Any]) -> str:
    penalty, ngram = cond["decoding"]
    return f"rp {penalty:g}" + (f", nr {ngram}" if ngram else "")


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def main_table(conditions: list[dict[str, Any]]) -> str:
    """The headline table: per style (and setting), plain vs steered adherence, novelty, loops."""
    rows = [
        "| style | setting | decoding | adherence plain | adherence steered | steered − plain [95% CI] "
        "| better / same / worse | novelty plain / steered | looping plain / steered "
        "| chars plain | chars steered |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cond in conditions:
        style = cond["style"]
        plain = [score(t, style) for t in cond["plain"]]
        steered = [score(t, style) for t in cond["steered"]]
        paired = paired_bootstrap(plain, steered)
        n = len(plain)
        rows.append(
            f"| {style} | {cond['label']} | {_decoding(cond)} | {mean_sd(plain)} | {mean_sd(steered)} "
            f"| {paired.difference:+.2f} [{paired.low:+.2f}, {paired.high:+.2f}] "
            f"| {paired.better} / {paired.same} / {paired.worse} "
            f"| {_mean([novelty(t) for t in cond['plain']]):.2f} / "
            f"{_mean([novelty(t) for t in cond['steered']]):.2f} "
            f"| {sum(map(repetitive, cond['plain']))}/{n} / {sum(map(repetitive, cond['steered']))}/{n} "
            f"| {mean_sd([len(t) for t in cond['plain']], digits=0)} "
            f"| {mean_sd([len(t) for t in cond['steered']], digits=0)} |"
        )
    return "\n".join(rows)


def specificity(conditions: list[dict[str, Any]]) -> str:
    """The 5×5 matrix: rows are the style steered with (spec settings), columns all five scorers.

    Each row also shows plain's scores under the same decoding, and whether the row's own
    style (the diagonal, in bold) is its largest entry.
    """
    runs = [c for c in conditions if c["label"] == "spec"]
    scorers = list(STYLE_SPECS)  # every built-in scorer, also when fewer styles were run
    rows = [
        "| steered with | " + " | ".join(scorers) + " | diagonal largest | plain, same decoding |",
        "|---|" + "---|" * len(scorers) + "---|---|",
    ]
    for cond in runs:
        means = {s: _mean([score(t, s) for t in cond["steered"]]) for s in scorers}
        own = means[cond["style"]]
        largest = all(own > v for s, v in means.items() if s != cond["style"])
        cells = [f"**{means[s]:.2f}**" if s == cond["style"] else f"{means[s]:.2f}" for s in scorers]
        plain = " / ".join(f"{_mean([score(t, s) for t in cond['plain']]):.2f}" for s in scorers)
        rows.append(
            f"| {cond['style']} | " + " | ".join(cells) + f" | {'yes' if largest else 'no'} | {plain} |"
        )
    return "\n".join(rows)


def goal_records(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals, per style at its spec settings: the figures and which are met."""
    scorers = list(STYLE_SPECS)
    records = []
    for cond in (c for c in conditions if c["label"] == "spec"):
        style = cond["style"]
        steered = _mean([score(t, style) for t in cond["steered"]])
        own = {s: _mean([score(t, s) for t in cond["steered"]]) for s in scorers}
        plain = _mean([score(t, style) for t in cond["plain"]])
        new = _mean([novelty(t) for t in cond["steered"]])
        loops = (sum(map(repetitive, cond["steered"])), sum(map(repetitive, cond["plain"])))
        largest = all(steered > v for s, v in own.items() if s != style)
        checks = [steered >= 0.6, plain <= 0.3, new >= 0.9, loops[0] <= loops[1], largest]
        record = {
            "style": style,
            "steered": round(steered, 4),
            "plain": round(plain, 4),
            "novelty": round(new, 4),
            "loops_steered": loops[0],
            "loops_plain": loops[1],
            "diagonal_largest": largest,
        }
        records.append({**record, "checks": checks, "goals_met": all(checks)})
    return records


def goals(conditions: list[dict[str, Any]]) -> str:
    """The goals table of the page (from `goal_records`)."""
    rows = [
        "| style | steered ≥ 0.6 | plain ≤ 0.3 | novelty ≥ 0.9 | loops ≤ plain's | diagonal largest | all |",
        "|---|---|---|---|---|---|---|",
    ]

    def mark(ok: bool, text: str) -> str:
        return f"{'✓' if ok else '✗'} {text}"

    for r in goal_records(conditions):
        checks = r["checks"]
        steered, plain, new = f"{r['steered']:.2f}", f"{r['plain']:.2f}", f"{r['novelty']:.2f}"
        loops = f"{r['loops_steered']} vs {r['loops_plain']}"
        rows.append(
            f"| {r['style']} | {mark(checks[0], steered)} | {mark(checks[1], plain)} "
            f"| {mark(checks[2], new)} | {mark(checks[3], loops)} "
            f"| {mark(checks[4], '')} | {'✓' if r['goals_met'] else '✗'} |"
        )
    return "\n".join(rows)


def summary(args: argparse.Namespace, questions: list[Question], conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """What `kvsl styles` shows of this run (`--summary`, shipped as specs/vectors/evidence.json)."""
    return {
        "format": 1,
        "model": args.model_name,
        "questions": len(questions),
        "max_new_tokens": args.max_new_tokens,
        "source": "docs/style_evidence.md",
        "styles": {
            r["style"]: {k: v for k, v in r.items() if k not in ("style", "checks")}
            for r in goal_records(conditions)
        },
    }


def by_benchmark(questions: list[Question], conditions: list[dict[str, Any]]) -> str:
    """Per style and setting, mean adherence plain → steered within each benchmark."""
    names = list(dict.fromkeys(q.benchmark for q in questions))
    rows = ["| style | setting | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for cond in conditions:
        cells = []
        for name in names:
            picked = [i for i, q in enumerate(questions) if q.benchmark == name]
            plain = statistics.fmean(score(cond["plain"][i], cond["style"]) for i in picked)
            steered = statistics.fmean(score(cond["steered"][i], cond["style"]) for i in picked)
            cells.append(f"{plain:.2f} → {steered:.2f}")
        rows.append(f"| {cond['style']} | {cond['label']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def render(
    args: argparse.Namespace,
    questions: list[Question],
    conditions: list[dict[str, Any]],
    scorers: list[str],
    build_seconds: dict[str, float],
    wall: float,
    date: str,
) -> str:
    """The whole markdown page."""
    n = len(questions)
    out: list[str] = [
        "# Style adherence: plain vs steered on the embedded model",
        "",
        "Written by `scripts/style_evidence.py` (do not edit by hand; rerun the script). "
        f"Command: `python scripts/style_evidence.py --per-benchmark {args.per_benchmark} "
        f"--max-new-tokens {args.max_new_tokens} --batch-size {args.batch_size} "
        f"--styles {','.join(scorers)}"
        + (f" --threads {args.threads}" if args.threads else "")
        + "".join(f" --sensitivity {s}" for s in args.sensitivity)
        + "".join(f" --decoding {s}" for s in args.decoding)
        + (f" --summary {_relative(args.summary)}" if args.summary is not None else "")
        + "`.",
        "",
        f"For each built-in style, {n} held-out questions are answered greedily by the embedded "
        "model twice: plain (the chat prompt plus the offset token, no edit, as `kvsl run "
        "--compare` does) and steered with the spec's own coefficients, both under the "
        "style's decoding (see Settings). Each output is scored "
        "with the style's adherence scorer (`kvsl.styles.score`, 0–1, surface markers only; "
        "see docs/styles.md). Adherence is mean ± sd over the questions; the difference is "
        "paired (same question), with a 95% percentile bootstrap interval "
        f"({RESAMPLES} resamples). *Looping* counts outputs in which some 4-word run occurs "
        "3 or more times (degenerate repetition); *novelty* is `kvsl.styles.novelty`, the "
        "share of an answer's words that repeat nothing (1 = no repetition).",
        "",
        "## Adherence and length",
        "",
        main_table(conditions),
        "",
        "## By benchmark",
        "",
        "Mean adherence to the steered style, plain → steered, over the questions of each "
        "benchmark.",
        "",
        by_benchmark(questions, conditions),
        "",
        "## Specificity",
        "",
        "Mean score of each style's steered outputs (rows, the spec's settings) under each "
        "style's scorer (columns). Steering with a style should raise its own score above "
        "every other style's (the diagonal, in bold, is the row's largest). The last column is "
        "plain's scores under the same decoding, in the same column order.",
        "",
        specificity(conditions),
        "",
        "## Goals (issue 9)",
        "",
        "Per style at the spec's settings: steered adherence ≥ 0.6 where plain under the same "
        "decoding is ≤ 0.3; mean novelty of the steered answers ≥ 0.9 and no more looping "
        "answers than plain; the diagonal of the specificity matrix is its row's largest.",
        "",
        goals(conditions),
    ]
    out += ["", "## Examples (first ~200 characters; ⏎ is a line break)", ""]
    for cond in conditions:
        style = cond["style"]
        deltas = [
            score(s, style) - score(p, style)
            for p, s in zip(cond["plain"], cond["steered"], strict=True)
        ]
        # The question steering moved most, and the first question (not cherry-picked).
        picks = sorted({max(range(n), key=lambda i: deltas[i]), 0})
        out.append(f"### {style} ({cond['label']})")
        out.append("")
        out.append("| question | plain (score) | steered (score) |")
        out.append("|---|---|---|")
        for i in picks:
            p, s = cond["plain"][i], cond["steered"][i]
            out.append(
                f"| {questions[i].benchmark} `{questions[i].id}` "
                f"| {_cell(p)} ({score(p, style):.2f}) | {_cell(s)} ({score(s, style):.2f}) |"
            )
        out.append("")
    out += [
        "## Settings",
        "",
        f"- model: `{args.model_name}` (the specs' `model =`; embedded SmolLM2-135M-Instruct "
        f"GGUF), fp32, {args.device}",
        f"- kvsl {kvsl.__version__}, Python {platform.python_version()}, date {date}",
        f"- questions: N = {n} ({args.per_benchmark} per benchmark, the first items of each "
        "dev/validation split whose question no bundled trace was written for): "
        + ", ".join(f"{q.benchmark} `{q.id}`" for q in questions),
        "- prompts: `Example.question` from `kvsl.formats.questions.load_benchmark` (multiple "
        "choice with its `Choices:` block), as the user turn of the chat template",
        f"- decoding: greedy, max_new_tokens = {args.max_new_tokens}, no stop strings, "
        f"batch size {args.batch_size}, torch threads {args.threads or 'default'}; per style, "
        "plain and steered share a repetition penalty (rp, transformers' "
        "`repetition_penalty`) and a no-repeat n-gram size (nr, `no_repeat_ngram_size`; "
        "0 is off): "
        + ", ".join(f"{c['style']} {_decoding(c)}" for c in conditions if c["label"] == "spec"),
    ]
    for cond in conditions:
        out.append(
            f"- {cond['style']} ({cond['label']}): {cond['coefficients']}; vectors from "
            f"{cond['pairs']} pairs × {cond['shots']} shots (`{cond['artifact']}`); "
            f"steered generation {cond['seconds']:.0f} s"
        )
    out.append(
        "- build time (about 0 when an up-to-date artifact was reused): "
        + ", ".join(f"{s} {sec:.0f} s" for s, sec in build_seconds.items())
    )
    out.append(f"- wall time: {wall:.0f} s ({wall / 60:.1f} min) for the whole run")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        raise SystemExit(main())
