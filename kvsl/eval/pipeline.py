"""The whole of `kvsl eval` as two functions: `run_eval` (test split) and `run_sweep` (dev).

An `EvalRequest` holds every setting; the report dicts they return hold every setting
too (plus hashes of the inputs), so a JSON report is enough to reproduce a run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kvsl.base.hashing import file_sha256
from kvsl.base.jsonl import dumps
from kvsl.base.plurals import counted
from kvsl.eval.results_cache import ResultsCache, shared_results_cache
from kvsl.eval.runner import EvalResult, check_out, check_settings, evaluate
from kvsl.eval.sweep import (
    SWEEP_PARAMETERS,
    SweepBase,
    SweepPoint,
    best_values,
    chance_rate,
    choose_caa,
    parse_sweep,
    run_points,
    swept_method,
)
from kvsl.formats.questions import Example, canonical_format, load_benchmark
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import GenerationSettings, LayerSpan


@dataclass(frozen=True)
class EvalRequest:
    """Every setting of one `kvsl eval` invocation."""

    target: str | None  # a .kvs spec or an artifact; None: plain/cot on `model`
    benchmark: str | None  # format name; None: detected from the file
    data: str | None  # the test file (None in sweep mode)
    labels: str | None = None
    dev: str | None = None
    dev_labels: str | None = None
    methods: tuple[str, ...] = ("plain", "cot", "cache", "cache+cot", "caa")
    model: str | None = None
    limit: int | None = None
    dev_limit: int | None = None
    batch_size: int = 8
    decode: GenerationSettings = field(default_factory=GenerationSettings)
    runs: int = 1  # sampled runs with seeds decode.seed, decode.seed + 1, ...
    # Decoding controls (`GenerationSettings` field names) taken from the spec's `generate`
    # block instead of `decode` (the CLI names those not given as flags).
    spec_controls: tuple[str, ...] = ()
    # The `decode` fields given as flags ("sample" for `--sample`/`--greedy`): a sampling-only
    # one with greedy decoding is refused (`GenerationSettings.problems`).
    decode_flags: tuple[str, ...] = ()
    precision: str = "fp32"
    device: str | None = None  # None: the CPU; "auto": CUDA when available
    device_map: str | None = None  # transformers' device_map (replaces `device`)
    layers: tuple[LayerSpan, ...] | None = None  # cache steering overrides
    key: float | None = None
    value: float | None = None
    caa_layer: int | None = None
    caa_multiplier: float | None = None
    caa_layers: tuple[int, ...] | None = None  # the dev grid (None: a default spread)
    caa_multipliers: tuple[float, ...] = (1.0, 2.0, 4.0)
    export_caa: str | None = None
    sweeps: tuple[tuple[str, tuple[float, ...]], ...] = ()
    forced_choice: str = "model"
    out_dir: str = ".kvsl/eval"
    force: bool = False
    threads: int | None = None  # torch CPU threads (None: torch's default)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["layers"] = [asdict(s) for s in self.layers] if self.layers else None
        return data


def effective_decode(request: EvalRequest, plan: Any) -> GenerationSettings:
    """`request.decode` with the `spec_controls` read from the plan's `generate` block.

    Every method of one eval decodes with the result, plain included.
    """
    if plan is None or not request.spec_controls:
        return request.decode
    spec = {name: getattr(plan.generate, name) for name in request.spec_controls}
    return replace(request.decode, **spec)


def _results_cache(out_dir: Path) -> ResultsCache:
    """The per-example cache; under torchrun each rank appends to its own shard of it."""
    return shared_results_cache(out_dir / "results.jsonl")


def _file_sha256(path: str | None) -> str | None:
    """The benchmark file's sha256 for the report (streamed by the floor's one hasher)."""
    if path is None or not Path(path).exists():
        return None
    return file_sha256(path)


def _load(path: str, benchmark: str | None, labels: str | None, limit: int | None) -> list[Example]:
    fmt = canonical_format(benchmark) if benchmark else None
    return load_benchmark(path, fmt, labels_path=labels, limit=limit)


def _progress(console: Any, quiet: bool) -> tuple[Any, Any]:
    """A rich progress display with ETA, and the (label, advance, total) callback for it."""
    if quiet or console is None:
        return None, None
    from kvsl.base.progress import progress_display

    display = progress_display(console)
    tasks: dict[str, Any] = {}

    def update(label: str, advance: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = display.add_task(label, total=total, completed=advance)
        else:
            display.advance(tasks[label], advance)

    return display, update


def _default_caa_layers(num_layers: int) -> tuple[int, ...]:
    """A spread over the middle of the network, where CAA usually works best."""
    picks = {max(1, round(num_layers * f)) for f in (1 / 3, 1 / 2, 2 / 3)}
    return tuple(sorted(layer for layer in picks if layer < num_layers))


def _caa_choice(
    request: EvalRequest, ctx: Any, caa: Any, cache: ResultsCache, progress: Any
) -> tuple[int, float, dict[str, object]]:
    """The CAA layer and multiplier: fixed on the command line, else chosen on dev."""
    if request.caa_layer is not None and request.caa_multiplier is not None:
        return request.caa_layer, request.caa_multiplier, {"chosen_on": "command line"}
    if request.dev is None:
        raise KvslError.usage(
            "KVS616",
            "CAA needs `--dev` to choose its layer and multiplier, or both "
            "`--caa-layer` and `--caa-multiplier`",
            help="hyperparameters are chosen on a dev split, never on the test set",
        )
    dev = _load(request.dev, request.benchmark, request.dev_labels, request.dev_limit)
    layers = (
        (request.caa_layer,)
        if request.caa_layer is not None
        else request.caa_layers or _default_caa_layers(ctx.num_layers)
    )
    multipliers = (
        (request.caa_multiplier,) if request.caa_multiplier is not None else request.caa_multipliers
    )
    layer, multiplier, points = choose_caa(
        ctx.generator,
        caa,
        layers,
        multipliers,
        dev,
        effective_decode(request, ctx.plan),
        cache=cache,
        identity=ctx.identity,
        progress=progress,
    )
    return (
        layer,
        multiplier,
        {
            "chosen_on": request.dev,
            "dev_examples": len(dev),
            "grid": [p.to_dict() for p in points],
        },
    )


def _context(request: EvalRequest, console: Any, need_vectors: bool) -> Any:
    from kvsl.eval.session import open_context

    if request.threads is not None:
        from kvsl.engine.threads import configure_threads

        # On a CPU shared with other work, one thread can be several times faster than
        # two that wait on each other (measured here: 12 vs 2.3 tokens/s).
        configure_threads(request.threads)

    return open_context(
        Path(request.target) if request.target else None,
        model=request.model,
        out_dir=Path(request.out_dir),
        batch_size=request.batch_size,
        precision=request.precision,
        device=request.device,
        device_map=request.device_map,
        force=request.force,
        need_vectors=need_vectors,
        console=console,
    )


def run_eval(
    request: EvalRequest, *, console: Any = None, quiet: bool = False, context: Any = None
) -> dict[str, Any]:
    """Evaluate every requested method on the test file; returns the JSON-ready report.

    `context` (an `EvalContext` from `open_context` for the same target) reuses a model
    already loaded, e.g. across the benchmarks of one report.

    Also writes `<out>/results.jsonl` (the per-example cache) and
    `<out>/eval-<benchmark>-<data stem>.json` (the report).
    """
    from kvsl.eval.session import coefficients

    check_settings(request.decode, request.batch_size, request.limit, request.runs,
                   dev_limit=request.dev_limit, numbers=_given_numbers(request),
                   given=request.decode_flags)
    check_out(str(request.out_dir))
    if request.data is None:
        raise KvslError.usage(
            "KVS612", "`--data` is required", help="give the test file with `--data PATH`"
        )
    started = time.perf_counter()
    examples = _load(request.data, request.benchmark, request.labels, request.limit)
    if request.target is None and any(m not in ("plain", "cot") for m in request.methods):
        from kvsl.eval.session import _needs_spec

        raise _needs_spec(next(m for m in request.methods if m not in ("plain", "cot")))
    need_vectors = any(m.startswith("cache") for m in request.methods)
    ctx = context if context is not None else _context(request, console, need_vectors)
    out_dir = Path(request.out_dir)
    cache = _results_cache(out_dir)
    if console is not None:
        for warning in cache.warnings:
            console.print(f"{warning.severity.value}[{warning.code}]: {warning.message}")
    display, progress = _progress(console, quiet)
    coeffs = (
        coefficients(ctx, layers=request.layers, key=request.key, value=request.value)
        if need_vectors
        else None
    )
    with display if display is not None else nullcontext():
        caa = _caa_run(request, ctx, cache, progress) if "caa" in request.methods else None
        result = _evaluate_methods(request, ctx, examples, cache, coeffs, caa, progress)
    report = _report(request, ctx, examples, result, started)
    report["caa"] = _caa_section(request, caa)
    report["coefficients"] = {str(k): list(v) for k, v in coeffs.items()} if coeffs else None
    # Runs with other coefficients get their own report instead of overwriting this one.
    overrides = "".join(
        f"-{name}{value:g}"
        for name, value in (("key", request.key), ("value", request.value))
        if value is not None
    )
    path = out_dir / f"eval-{examples[0].source}-{Path(request.data).stem}{overrides}.json"
    _write_report(path, report)
    report["_summaries"] = result.summaries  # for tables; dropped before JSON output
    return report


@dataclass(frozen=True)
class _CaaRun:
    """CAA's vectors and the (layer, multiplier) it runs with; `info`: how they were chosen."""

    vectors: Any
    layer: int
    multiplier: float
    info: dict[str, object]


def _caa_run(request: EvalRequest, ctx: Any, cache: ResultsCache, progress: Any) -> _CaaRun:
    from kvsl.eval.session import caa_vectors

    vectors = caa_vectors(ctx, batch_size=1)
    layer, multiplier, info = _caa_choice(request, ctx, vectors, cache, progress)
    return _CaaRun(vectors, layer, multiplier, info)


def _evaluate_methods(
    request: EvalRequest,
    ctx: Any,
    examples: Sequence[Example],
    cache: ResultsCache,
    coeffs: Any,
    caa: _CaaRun | None,
    progress: Any,
) -> EvalResult:
    """Every requested method on the test examples (generated, or read from the cache)."""
    from kvsl.eval.session import make_methods

    methods = make_methods(
        ctx,
        request.methods,
        coefficients_=coeffs,
        caa=caa.vectors if caa is not None else None,
        caa_layer=caa.layer if caa is not None else None,
        caa_multiplier=caa.multiplier if caa is not None else None,
    )
    return evaluate(
        ctx.generator,
        methods,
        examples,
        effective_decode(request, ctx.plan),
        cache=cache,
        identity=ctx.identity,
        forced=request.forced_choice,
        style=ctx.plan,
        progress=progress,
        runs=request.runs,
    )


def _caa_section(request: EvalRequest, caa: _CaaRun | None) -> dict[str, object] | None:
    """The report's `caa` entry; exports the control vector when `--export-caa` asks."""
    if caa is None:
        return None
    exported = None
    if request.export_caa:
        from kvsl.eval.caa import export_control_vector

        exported = str(
            export_control_vector(
                caa.vectors, request.export_caa, layers=[caa.layer], multiplier=caa.multiplier
            )
        )
    return {"layer": caa.layer, "multiplier": caa.multiplier, "export": exported, **caa.info}


def _write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON report (under torchrun, rank 0 alone); note its path and rank in it."""
    from kvsl.engine.distributed import dist_env

    if dist_env().is_main:
        _write_json(path, report)
    report["report_path"] = str(path)
    report["rank"] = dist_env().rank


def _report(
    request: EvalRequest, ctx: Any, examples: Sequence[Example], result: EvalResult, started: float
) -> dict[str, Any]:
    from kvsl import __version__

    plan = ctx.plan
    return {
        "kvsl_version": __version__,
        "command": sys.argv,
        "request": request.to_dict(),
        "decoding": asdict(effective_decode(request, plan)),
        "model": ctx.identity,
        "device": ctx.device_name,
        "plan": {
            "style": plan.style,
            "spec_path": plan.spec_path,
            "plan_hash": plan.plan_hash,
            "vector_hash": plan.vector_hash,
            "contrast": asdict(plan.contrast),
        }
        if plan is not None
        else None,
        "benchmark": {
            "format": examples[0].source if examples else request.benchmark,
            "data": request.data,
            "data_sha256": _file_sha256(request.data),
            "labels": request.labels,
            "examples": len(examples),
            "limit": request.limit,
            "first_id": examples[0].id if examples else None,
            "last_id": examples[-1].id if examples else None,
        },
        "generated_now": result.generated,
        "seconds": round(time.perf_counter() - started, 1),
        "methods": [s.to_dict() for s in result.summaries],
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:

    from kvsl.base.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(
            dumps(data, indent=2, default=str) + "\n", encoding="utf-8"
        )


def _given_numbers(request: EvalRequest) -> dict[str, float | None]:
    """The eval's float flags, which must be finite when given (KVS612)."""
    return {"--value": request.value, "--key": request.key,
            "--caa-multiplier": request.caa_multiplier}  # fmt: skip


def run_sweep(
    request: EvalRequest, *, console: Any = None, quiet: bool = False, context: Any = None
) -> dict[str, Any]:
    """Evaluate each swept setting on the dev split; writes a PNG plot and a JSON report.

    `context` reuses a loaded `EvalContext` for the same target, as in `run_eval`.
    """
    check_settings(request.decode, request.batch_size, request.dev_limit, request.runs,
                   numbers=_given_numbers(request), given=request.decode_flags)
    check_out(str(request.out_dir))
    if request.dev is None:
        raise KvslError.usage(
            "KVS616",
            "sweeps run on a dev split: `--dev` is required",
            help="pass the benchmark's train or dev file with `--dev`",
        )
    if request.target is None:
        from kvsl.eval.session import _needs_spec

        raise _needs_spec("cache")
    started = time.perf_counter()
    dev = _load(request.dev, request.benchmark, request.dev_labels, request.dev_limit)
    names = {name for name, _ in request.sweeps}
    ctx = context or _context(
        request, console, need_vectors=bool(names - {"caa-layer", "caa-multiplier"})
    )
    out_dir = Path(request.out_dir)
    cache = _results_cache(out_dir)
    display, progress = _progress(console, quiet)
    base = SweepBase(
        layers=request.layers,
        key=request.key,
        value=request.value,
        caa_layer=request.caa_layer,
        caa_multiplier=request.caa_multiplier,
        cot="cache+cot" in request.methods and "cache" not in request.methods,
    )
    sweeps: dict[str, list[SweepPoint]] = {}
    with display if display is not None else nullcontext():
        for name, values in request.sweeps:
            sweeps[name] = run_points(
                ctx.generator,
                name,
                [(v, swept_method(ctx, name, v, base)) for v in values],
                dev,
                effective_decode(request, ctx.plan),
                cache=cache,
                identity=ctx.identity,
                style=ctx.plan,
                progress=progress,
                runs=request.runs,
            )
    stem = f"sweep-{dev[0].source}-{Path(request.dev).stem}"
    plot = _sweep_plot(sweeps, out_dir / f"{stem}.png", ctx, request.dev, dev)
    report = _sweep_report(request, ctx, dev, sweeps, plot, started)
    _write_report(out_dir / f"{stem}.json", report)
    report["_points"] = sweeps  # for the terminal table; dropped before JSON output
    return report


def _sweep_plot(
    sweeps: dict[str, list[SweepPoint]], path: Path, ctx: Any, dev_path: str, dev: list[Example]
) -> Path:
    """The sweep's PNG plot (under torchrun, rank 0 alone draws it); returns its path."""
    from kvsl.engine.distributed import dist_env
    from kvsl.eval.plot import plot_sweeps

    if not dist_env().is_main:
        return path
    return plot_sweeps(
        sweeps,
        path,
        title=f"{ctx.plan.style if ctx.plan else ''} on {Path(dev_path).name} "
        f"({counted(len(dev), 'question')})",
        chance=chance_rate(dev),
    )


def _sweep_report(
    request: EvalRequest,
    ctx: Any,
    dev: list[Example],
    sweeps: dict[str, list[SweepPoint]],
    plot: Path,
    started: float,
) -> dict[str, Any]:
    from kvsl import __version__

    return {
        "kvsl_version": __version__,
        "command": sys.argv,
        "request": request.to_dict(),
        "model": ctx.identity,
        "plan_hash": ctx.plan.plan_hash if ctx.plan else None,
        "dev": {
            "data": request.dev,
            "data_sha256": _file_sha256(request.dev),
            "examples": len(dev),
        },
        "sweeps": {name: [p.to_dict() for p in pts] for name, pts in sweeps.items()},
        "best": best_values(sweeps),
        "plot": str(plot),
        "seconds": round(time.perf_counter() - started, 1),
    }


__all__ = [
    "SWEEP_PARAMETERS",
    "EvalRequest",
    "effective_decode",
    "parse_sweep",
    "run_eval",
    "run_sweep",
]
