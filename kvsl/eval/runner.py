"""Running an eval: batched, resumable, with progress; and sweeps on a dev split.

Results are cached per example in `results.jsonl` in the output folder, one JSON record
per generated response, keyed by

    <method name>/<settings hash>/<run>/<example id>/<question hash>

where the settings hash covers the model identity, the method's settings (coefficients,
vectors, layer, multiplier, CoT), the decoding settings (max new tokens, sampling,
temperature, top-p, per-run seed) and the system prompt. An interrupted eval resumes:
a second run with the same settings generates nothing. Answers are extracted again from
the stored responses each time, so an improved extractor needs no new generations; the
model's forced choice (for responses no rule could read) is stored with the response.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kvsl.base.jsonl import append_jsonl
from kvsl.eval.answers import Extracted, extract_answer, is_correct
from kvsl.eval.stats import Accuracy, MeanSd, PairedComparison, accuracy, compare_paired, mean_sd
from kvsl.formats.questions import Example
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.plan import GenerationSettings
from kvsl.lang.source import Span

EVAL_FORMAT = 1  # bump when a change invalidates cached generations
ForcedMode = str  # "model" | "overlap"


def check_settings(
    decode: GenerationSettings, batch_size: int, limit: int | None, runs: int = 1
) -> None:
    """KVS612 for values out of range."""
    problems = []
    if runs < 1:
        problems.append("`--runs` must be at least 1")
    if decode.max_new_tokens < 1:
        problems.append("`--max-new-tokens` must be at least 1")
    if batch_size < 1:
        problems.append("`--batch-size` must be at least 1")
    if limit is not None and limit < 0:
        problems.append("`--limit` must be at least 0")
    if decode.temperature < 0:
        problems.append("`--temperature` must not be negative")
    if not 0 < decode.top_p <= 1:
        problems.append("`--top-p` must be in (0, 1]")
    problems += decode.problems()
    if problems:
        raise KvslError(
            [
                Diagnostic("KVS612", Severity.ERROR, p, Span.whole_file("<command line>"))
                for p in problems
            ],
            ExitCode.USAGE,
        )


# --- the results cache ---------------------------------------------------------------------


def _question_hash(example: Example) -> str:
    return hashlib.sha256(f"{example.question}\x00{example.answer}".encode()).hexdigest()[:10]


def shard_paths(path: Path) -> list[Path]:
    """The per-rank shards of a results cache: `results.rank-0.jsonl`, ... (sorted)."""
    return sorted(path.parent.glob(f"{path.stem}.rank-*{path.suffix}"))


class ResultsCache:
    """Append-only JSONL of generated responses, read back into a dict by key.

    Lines that are not valid records (a run killed mid-write) are skipped with a KVS613
    warning, collected in `warnings`.

    With `rank` set (several processes under torchrun), this process appends to its own
    shard `<stem>.rank-<rank>.jsonl` beside the file, so no two processes write one file;
    `merge_shards` (rank 0, after a barrier) appends the shards to the file and removes
    them. Shards left by an interrupted run are read like the file itself, so it resumes.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, rank: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.rank = rank
        self.records: dict[str, dict[str, Any]] = {}
        self.warnings: list[Diagnostic] = []
        self.reload()

    def reload(self) -> None:
        """Read the file and any shards again (after another rank merged them)."""
        self.records = {}
        self.warnings = []
        if self.path is None:
            return
        for path in [self.path, *shard_paths(self.path)]:
            if path.exists():
                self._load(path)

    @property
    def write_path(self) -> Path | None:
        if self.path is None or self.rank is None:
            return self.path
        return self.path.with_name(f"{self.path.stem}.rank-{self.rank}{self.path.suffix}")

    def merge_shards(self) -> int:
        """Append every shard's lines to the file, then remove the shards; returns lines moved."""
        if self.path is None:
            return 0
        lines: list[str] = []
        shards = shard_paths(self.path)
        for shard in shards:
            text = shard.read_text(encoding="utf-8", errors="replace")
            lines.extend(line for line in text.split("\n") if line.strip())
        if lines:
            append_jsonl(self.path, lines)
        for shard in shards:
            shard.unlink(missing_ok=True)
        return len(lines)

    def _load(self, path: Path) -> None:
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record["key"]
                if not isinstance(record.get("response"), str) or not isinstance(
                    record.get("tokens"), int
                ):
                    raise TypeError("a record needs `response` and `tokens`")
            except (json.JSONDecodeError, KeyError, TypeError):
                self.warnings.append(
                    Diagnostic(
                        "KVS613",
                        Severity.WARNING,
                        f"line {number} of the results cache is not a valid record; "
                        "that example is generated again",
                        Span(str(path), 0, 0, number, 1, number, 1),
                    )
                )
                continue
            self.records[key] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def add(self, records: Iterable[dict[str, Any]]) -> None:
        batch = list(records)
        for record in batch:
            self.records[record["key"]] = record
        target = self.write_path
        if target is None:
            return
        # A killed run leaves at most one torn last line, which the loader skips.
        append_jsonl(
            target, (json.dumps(record, ensure_ascii=False, sort_keys=True) for record in batch)
        )


def shared_results_cache(path: str | os.PathLike[str]) -> ResultsCache:
    """The per-example cache for this process: under torchrun each rank appends to its own
    shard of it (merged by rank 0 after each `evaluate`); one process writes the file."""
    from kvsl.engine.distributed import barrier, dist_env

    env = dist_env()
    cache = ResultsCache(path, rank=env.rank if env.active else None)
    barrier()  # every rank has read the cache before any rank appends to it
    return cache


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One example under one method and run."""

    example_id: str
    run: int
    response: str
    tokens: int
    seconds: float
    extracted: Extracted
    correct: bool


@dataclass(frozen=True)
class MethodSummary:
    """Everything a report shows for one method."""

    method: str
    settings: dict[str, object]
    n: int
    accuracy: Accuracy  # pooled over runs (runs = 1: the accuracy itself)
    run_accuracies: tuple[float, ...]
    over_runs: MeanSd
    versus_plain: PairedComparison | None
    mean_chars: float
    mean_tokens: float
    style: float | None  # mean style-adherence score in [0, 1], None if not scorable
    ms_per_token: float | None
    forced_share: float  # share of answers no extraction rule could read

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        return json.loads(json.dumps(data, default=str, allow_nan=True))


@dataclass
class EvalResult:
    methods: list[str]
    outcomes: dict[str, list[Outcome]]  # method → outcomes (examples × runs)
    summaries: list[MethodSummary]
    generated: int  # responses generated by this call (0 when everything was cached)
    settings: dict[str, object] = field(default_factory=dict)

    def summary(self, method: str) -> MethodSummary:
        return next(s for s in self.summaries if s.method == method)


Progress = Callable[[str, int, int], None]  # (description, advance, total)


def cache_key(method: Any, run_hash: str, run: int, example: Example) -> str:
    return f"{method.name}/{run_hash}/{run}/{example.id}/{_question_hash(example)}"


def method_run_hash(
    method: Any,
    decode: GenerationSettings,
    run: int,
    identity: dict[str, object],
    system_prompt: str | None,
    runs: int = 1,
) -> str:
    from kvsl.eval.methods import COT_PREFIX, settings_hash

    return settings_hash(
        {
            "format": EVAL_FORMAT,
            "model": identity,
            "method": method.settings(),
            "decode": decode.for_run(run, runs).payload(),
            "system_prompt": system_prompt,
            "cot_prefix": COT_PREFIX if method.cot else None,
        }
    )


def evaluate(
    generator: Any,
    methods: Sequence[Any],
    examples: Sequence[Example],
    decode: GenerationSettings,
    *,
    cache: ResultsCache,
    identity: dict[str, object] | None = None,
    forced: ForcedMode = "model",
    style: Any = None,
    progress: Progress | None = None,
    baseline: str = "plain",
    runs: int = 1,
) -> EvalResult:
    """Generate (or read from the cache) every method's responses and summarise them.

    `generator` is a `kvsl.eval.methods.Generator`; every method decodes with `decode`
    (`runs > 1`: sampled runs with seeds `seed, seed+1, ...`); `style` a Plan or style name
    scored with `kvsl.styles.score` (None: no adherence column); `baseline` the method name
    the paired comparisons are made against (when it is among `methods`).
    """
    from kvsl.engine.distributed import shard

    identity = identity or {}
    generated = 0
    turn = 0  # batches dealt so far: the round-robin goes on across methods and runs
    for run in range(runs):
        settings = decode.for_run(run, runs)
        for method in methods:
            run_hash = method_run_hash(
                method, decode, run, identity, generator.system_prompt, runs
            )
            pending = [e for e in examples if cache_key(method, run_hash, run, e) not in cache]
            label = f"{method.name}" + (f" (run {run + 1}/{runs})" if runs > 1 else "")
            if progress is not None:
                progress(label, len(examples) - len(pending), len(examples))
            # Shortest prompts first (less padding); chunks of one batch, saved as they finish.
            pending.sort(key=lambda e: len(e.question))
            chunks = [
                pending[start : start + generator.batch_size]
                for start in range(0, len(pending), generator.batch_size)
            ]
            # Under torchrun, whole batches go round-robin to ranks: each batch is the one a
            # single process would run, so greedy generations are the same tokens. The deal
            # goes on from method to method, so methods of one batch each (a tune's first
            # rungs) still spread over the ranks instead of all landing on rank 0.
            mine = shard(chunks, offset=turn)
            turn += len(chunks)
            for chunk in mine:
                gens = generator.generate(method, [e.question for e in chunk], settings)
                forced_labels = _model_forced(generator, method, chunk, gens, forced)
                cache.add(
                    {
                        "key": cache_key(method, run_hash, run, e),
                        "method": method.name,
                        "run": run,
                        "seed": settings.seed,
                        "example_id": e.id,
                        "gold": e.answer,
                        "response": g.text,
                        "tokens": g.tokens,
                        "seconds": round(g.seconds, 6),
                        "forced_model": forced_labels[i],
                    }
                    for i, (e, g) in enumerate(zip(chunk, gens, strict=True))
                )
                generated += len(chunk)
                if progress is not None:
                    progress(label, len(chunk), len(examples))
    generated = _merge_ranks(cache, generated)
    outcomes = {
        method.name: collect_outcomes(
            method, examples, decode, cache, identity, generator.system_prompt, runs
        )
        for method in methods
    }
    summaries = summarise(methods, outcomes, runs, style=style, baseline=baseline)
    return EvalResult([m.name for m in methods], outcomes, summaries, generated)


def _merge_ranks(cache: ResultsCache, generated: int) -> int:
    """Under torchrun: rank 0 merges every rank's shard, all ranks read the merged cache;
    returns the responses generated by all ranks (`generated` itself in one process)."""
    from kvsl.engine.distributed import all_gather, barrier, is_main

    counts = all_gather(generated)
    if len(counts) == 1:
        return generated
    barrier()  # every shard is complete
    if is_main():
        cache.merge_shards()
    barrier()  # the merged file is complete
    cache.reload()
    # Every rank has read the merged file before any appends to its shard again (the next
    # evaluate of a sweep or a tune): a rank reading a shard another rank is already
    # writing could see other pending questions and split them differently.
    barrier()
    return sum(counts)


def _model_forced(
    generator: Any, method: Any, chunk: Sequence[Example], gens: Sequence[Any], forced: ForcedMode
) -> list[str | None]:
    """The model's forced choice for multiple-choice responses no rule could read."""
    labels: list[str | None] = [None] * len(chunk)
    if forced != "model":
        return labels
    todo = [
        i
        for i, (e, g) in enumerate(zip(chunk, gens, strict=True))
        if e.is_multiple_choice and extract_answer(e, g.text).forced
    ]
    if not todo:
        return labels
    picks = generator.forced_choices(
        method,
        [chunk[i].question for i in todo],
        [gens[i].text for i in todo],
        [chunk[i].labels for i in todo],
    )
    for i, pick in zip(todo, picks, strict=True):
        labels[i] = pick
    return labels


def collect_outcomes(
    method: Any,
    examples: Sequence[Example],
    decode: GenerationSettings,
    cache: ResultsCache,
    identity: dict[str, object],
    system_prompt: str | None,
    runs: int = 1,
) -> list[Outcome]:
    """Outcomes for every example and run, read from the cache and scored now."""
    out: list[Outcome] = []
    for run in range(runs):
        run_hash = method_run_hash(method, decode, run, identity, system_prompt, runs)
        for example in examples:
            record = cache.get(cache_key(method, run_hash, run, example))
            if record is None:
                continue
            forced_label = record.get("forced_model")
            extracted = extract_answer(
                example,
                record["response"],
                forced=_constant(forced_label) if forced_label else None,
            )
            out.append(
                Outcome(
                    example.id,
                    run,
                    record["response"],
                    int(record["tokens"]),
                    float(record.get("seconds", 0.0)),
                    extracted,
                    is_correct(example, extracted),
                )
            )
    return out


def _constant(label: str) -> Callable[[], str | None]:
    return lambda: label


def summarise(
    methods: Sequence[Any],
    outcomes: dict[str, list[Outcome]],
    runs: int,
    *,
    style: Any = None,
    baseline: str = "plain",
) -> list[MethodSummary]:
    scorer = _style_scorer(style)
    base = outcomes.get(baseline)
    summaries = []
    for method in methods:
        rows = outcomes[method.name]
        n_examples = len({o.example_id for o in rows})
        correct = sum(o.correct for o in rows)
        per_run = tuple(
            sum(o.correct for o in rows if o.run == r) / max(1, sum(1 for o in rows if o.run == r))
            for r in range(runs)
            if any(o.run == r for o in rows)
        )
        versus = None
        if base is not None and method.name != baseline:
            base_by = {(o.example_id, o.run): o.correct for o in base}
            pairs = [
                (base_by[(o.example_id, o.run)], o.correct)
                for o in rows
                if (o.example_id, o.run) in base_by
            ]
            if pairs:
                versus = compare_paired([a for a, _ in pairs], [b for _, b in pairs])
        tokens = sum(o.tokens for o in rows)
        seconds = sum(o.seconds for o in rows)
        summaries.append(
            MethodSummary(
                method=method.name,
                settings=method.settings(),
                n=n_examples,
                accuracy=accuracy(correct, len(rows)),
                run_accuracies=per_run,
                over_runs=mean_sd(list(per_run)),
                versus_plain=versus,
                mean_chars=_mean([len(o.response) for o in rows]),
                mean_tokens=_mean([o.tokens for o in rows]),
                style=_mean([scorer(o.response) for o in rows]) if scorer and rows else None,
                ms_per_token=1000 * seconds / tokens if tokens and seconds > 0 else None,
                forced_share=_mean([1.0 if o.extracted.forced else 0.0 for o in rows]),
            )
        )
    return summaries


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _style_scorer(style: Any) -> Callable[[str], float] | None:
    if style is None:
        return None
    try:
        from kvsl import styles
    except ImportError:  # pragma: no cover - styles ships with kvsl
        return None
    can_score = getattr(styles, "can_score", None)
    if can_score is not None and not can_score(style):
        return None
    return lambda text: float(styles.score(text, style))


# --- hyperparameter choice and sweeps on a dev split --------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """One setting of a swept parameter, evaluated on the dev split."""

    parameter: str
    value: float
    method: str
    accuracy: Accuracy
    mean_chars: float
    style: float | None

    def to_dict(self) -> dict[str, object]:
        return json.loads(json.dumps(asdict(self), default=str))


def run_points(
    generator: Any,
    parameter: str,
    points: Sequence[tuple[float, Any]],
    examples: Sequence[Example],
    decode: GenerationSettings,
    *,
    cache: ResultsCache,
    identity: dict[str, object] | None = None,
    style: Any = None,
    progress: Progress | None = None,
    runs: int = 1,
) -> list[SweepPoint]:
    """Evaluate (value, method) points on `examples`; one `SweepPoint` per value."""
    methods = [m for _, m in points]
    result = evaluate(
        generator,
        methods,
        examples,
        decode,
        cache=cache,
        identity=identity,
        style=style,
        progress=progress,
        baseline="",
        runs=runs,
    )
    return [
        SweepPoint(parameter, float(value), m.name, s.accuracy, s.mean_chars, s.style)
        for (value, m), s in zip(points, result.summaries, strict=True)
    ]


def best_point(points: Sequence[SweepPoint]) -> SweepPoint:
    """Highest dev accuracy; ties go to the smaller |value| (the gentler intervention)."""
    return max(points, key=lambda p: (p.accuracy.rate, -abs(p.value)))


def choose_caa(
    generator: Any,
    vectors: Any,
    layers: Sequence[int],
    multipliers: Sequence[float],
    dev: Sequence[Example],
    decode: GenerationSettings,
    *,
    cache: ResultsCache,
    identity: dict[str, object] | None = None,
    progress: Progress | None = None,
) -> tuple[int, float, list[SweepPoint]]:
    """The (layer, multiplier) with the best dev accuracy over a grid (greedy decoding).

    Every grid point is a method in the results cache, so the search resumes too.
    """
    from kvsl.eval.methods import caa_method

    # Greedy, with the decoding controls every other method uses.
    greedy = replace(decode, sample=False)
    grid = [(layer, mult) for layer in layers for mult in multipliers]
    methods = [
        caa_method(vectors, layer, mult, name=f"caa@{layer}x{mult:g}") for layer, mult in grid
    ]
    result = evaluate(
        generator,
        methods,
        dev,
        greedy,
        cache=cache,
        identity=identity,
        progress=progress,
        baseline="",
    )
    points = [
        SweepPoint(f"caa layer {layer}", float(mult), s.method, s.accuracy, s.mean_chars, s.style)
        for (layer, mult), s in zip(grid, result.summaries, strict=True)
    ]
    best = max(
        zip(grid, points, strict=True),
        key=lambda item: (item[1].accuracy.rate, -abs(item[0][1]), -item[0][0]),
    )
    return best[0][0], best[0][1], points
