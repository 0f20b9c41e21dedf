"""`run_tune`: the whole of `kvsl tune` as one library function (the CLI is a thin wrapper).

    from kvsl.tune import TuneRequest, run_tune
    report = run_tune(TuneRequest("specs/step_by_step.kvs", "ARC-Challenge-Dev.jsonl"))
    report["chosen"]["setting"]   # {"shots": 2, "layers": "[1..]", "value": 4.0, ...}

Steps: refuse a test split (KVS700), load the dev file (KVS6xx diagnostics at file:line),
check the style can be scored (KVS701), load the model and the spec's vectors, search
(`kvsl.tune.search`), write the JSON and markdown reports and the plot, and with `write`
put the chosen values into the spec (`kvsl.tune.write`).

Under `torchrun` / `accelerate launch` every rank runs all of this: each setting's
questions are split across ranks by `evaluate`, each rank appends to its own shard of the
per-example cache, and after every evaluation rank 0 merges the shards and every rank reads
the merged cache back, so all ranks score the same answers and halve alike (rank 0's
choice is taken, `kvsl.tune.search`). Rank 0 alone writes the reports, the plot and the
spec (docs/scale.md).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

from kvsl.base.hashing import file_sha256
from kvsl.base.plurals import counted
from kvsl.eval.results_cache import shared_results_cache
from kvsl.eval.runner import check_out
from kvsl.formats.questions import Example, canonical_format, load_benchmark
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.plan import GenerationSettings, Plan
from kvsl.lang.source import Span
from kvsl.tune.grid import (
    SMALL_DEV,
    Setting,
    TuneRequest,
    check_request,
    grid,
    refuse_test_split,
)
from kvsl.tune.report import final_trials, plot_tune, write_reports
from kvsl.tune.search import Trial, TuneResult, dev_order, results_path, search


def load_dev(request: TuneRequest) -> list[Example]:
    """The dev questions in a fixed shuffled order, at most `limit` of them."""
    refuse_test_split(request.dev, request.format and canonical_format(request.format))
    fmt = canonical_format(request.format) if request.format else None
    examples = load_benchmark(request.dev, fmt, labels_path=request.labels)
    ordered = dev_order(examples, request.seed)
    return ordered[: request.limit] if request.limit is not None else ordered


def check_scorable(plan: Plan) -> None:
    """KVS701 unless kvsl.styles can score the spec's style."""
    from kvsl.styles import can_score

    if not can_score(plan):
        raise KvslError.one(
            "KVS701",
            f"style `{plan.style}` cannot be scored: it is not built in and declares no `markers`",
            Span.whole_file(plan.spec_path),
            help='add `markers = ["..."]`: regular expressions that mark the style in an answer',
        )


def check_writable(request: TuneRequest) -> None:
    """KVS704 before any work when `--write` could not write the spec."""
    from kvsl.base.locations import is_packaged

    if request.write and (Path(request.spec).suffix != ".kvs" or is_packaged(request.spec)):
        raise KvslError.one(
            "KVS704",
            f"`{request.spec}` cannot be written: it is "
            + ("a built-in spec inside the installed package" if is_packaged(request.spec)
               else "not a `.kvs` spec"),
            Span.whole_file(request.spec),
            help=_copy_help(request.spec),
            exit_code=ExitCode.USAGE,
        )  # fmt: skip


def _copy_help(spec: str) -> str:
    """What to copy: the spec alone would lose its `../templates/` (KVS200) and `vectors/`."""
    if Path(spec).suffix != ".kvs":
        return "tune the spec the artifact was built from (`kvsl inspect` names its style)"
    root = Path(spec).resolve().parent.parent
    return (
        f"copy `specs/` and `templates/` from `{root}` somewhere of your own (the spec's "
        "traces, templates and prebuilt vectors come along) and tune the copied spec"
    )


def run_tune(
    request: TuneRequest, *, console: Any = None, quiet: bool = False, context: Any = None
) -> dict[str, Any]:
    """Calibrate the spec on the dev set; returns the JSON-ready report (see the module doc).

    `context` (a `kvsl.eval.session.EvalContext` for the same spec) reuses a loaded model.
    Warnings (KVS613 torn cache lines, KVS703, KVS705) are in `report["warnings"]`.
    """
    from kvsl.lang import load_plan

    check_request(request)  # KVS702 for a flag out of range, before the spec is read
    check_writable(request)
    read_as = _digest(request.spec) if request.write else None  # `--write` edits this text
    check_out(request.out_dir, "KVS702")  # `--out` that is a file: before any work
    plan = load_plan(request.spec)
    dev = load_dev(request)
    check_scorable(plan)
    settings = grid(request, plan)
    warnings: list[Diagnostic] = []
    if len(dev) < SMALL_DEV:
        only = f"the dev set has only {counted(len(dev), 'question')}"
        warnings.append(_warning("KVS705", only, request))
    ctx = context if context is not None else _context(request, console)
    from kvsl.engine.distributed import dist_env

    main = dist_env().is_main  # under torchrun: rank 0 alone shows progress and writes
    cache = shared_results_cache(results_path(request.out_dir))  # a shard per rank
    warnings += cache.warnings
    base = GenerationSettings(max_new_tokens=request.max_new_tokens, seed=plan.generate.seed)
    display, progress = _progress(console, quiet or not main)
    with display if display is not None else _Nothing():
        result = search(
            request,
            settings,
            dev,
            make_method=_method_factory(ctx),
            generator=ctx.generator,
            identity=ctx.identity,
            style=plan,
            cache=cache,
            base=base,
            progress=progress,
        )
    if result.chosen is None:
        warnings.append(
            _warning("KVS703", "every setting scored a dev accuracy below plain", request)
        )
    if read_as is not None and result.chosen is not None and _digest(request.spec) != read_as:
        warnings.append(_edited_meanwhile(request))
    report = _report(request, plan, dev, result, warnings)
    out_dir = Path(request.out_dir)
    stem = f"tune-{plan.style}-{Path(request.dev).stem}"
    if not main:  # the same report as rank 0's, nothing written
        report["plot"] = str(out_dir / f"{stem}.png")
        report["report_path"] = str(out_dir / f"{stem}.json")
        report["markdown_path"] = str(out_dir / f"{stem}.md")
        report["rank"] = dist_env().rank
        return report
    plot = plot_tune(result, out_dir / f"{stem}.png", title=f"{plan.style} on {Path(request.dev).name}")
    report["plot"] = str(plot)
    if request.write and result.chosen is not None and not _has_errors(warnings):
        from kvsl.tune.write import spec_rewrite

        # The spec changes last, after the reports: a tune killed after the spec changed
        # but before its reports were written ran again on the tuned spec, another grid
        # (the default c_v grid is the spec's ± 2) and `written` empty.
        with spec_rewrite(request.spec, plan, result.chosen.setting, _comment(report)) as names:
            report["written"] = names
            json_path, md_path = write_reports(report, out_dir, stem)
    else:
        json_path, md_path = write_reports(report, out_dir, stem)
    report["report_path"], report["markdown_path"] = str(json_path), str(md_path)
    return report


def _context(request: TuneRequest, console: Any) -> Any:
    from kvsl.eval.session import open_context

    if request.threads is not None:
        from kvsl.engine.threads import configure_threads

        configure_threads(request.threads)
    return open_context(
        Path(request.spec),
        out_dir=Path(request.out_dir),
        batch_size=request.batch_size,
        precision=request.precision,
        device=request.device,
        force=request.force,
        console=console,
    )


def _method_factory(ctx: Any) -> Any:
    """setting → cache-steering method; vectors built (or read from the cache) once per shots."""
    from kvsl.eval.methods import cache_method
    from kvsl.eval.session import vectors_for_contrast, written_coefficients

    vectors: dict[int, Any] = {ctx.plan.contrast.shots: ctx.vectors}

    def make(setting: Setting) -> Any:
        if setting.shots not in vectors:
            vectors[setting.shots] = vectors_for_contrast(ctx, shots=setting.shots)
        chosen = vectors[setting.shots]
        # What the spec steers with once `--write` has put this setting into it.
        coeffs = written_coefficients(
            ctx, layers=setting.layers, key=setting.key, value=setting.value
        )
        vector_id = str(chosen.manifest.get("vector_hash", ""))
        return cache_method(chosen, coeffs, vector_id=vector_id)

    return make


def _progress(console: Any, quiet: bool) -> tuple[Any, Any]:
    """A rich progress display (kvsl.base.progress) and the eval's (label, advance, total) callback."""
    if quiet or console is None:
        return None, None
    from kvsl.base.progress import progress_display

    display = progress_display(console)
    tasks: dict[tuple[str, int], Any] = {}

    def update(label: str, advance: int, total: int) -> None:
        # One bar per method and subset size: a setting that goes on gets a new, longer bar.
        key = (label, total)
        if key not in tasks:
            tasks[key] = display.add_task(f"{label} ({total} q)", total=total, completed=advance)
        else:
            display.advance(tasks[key], advance)

    return display, update


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _digest(spec: str) -> str | None:
    """The spec file's content hash (None when it cannot be read now)."""
    from kvsl.base.hashing import file_sha256

    try:
        return file_sha256(spec)
    except OSError:
        return None


def _edited_meanwhile(request: TuneRequest) -> Diagnostic:
    """KVS706: the spec changed during the run, so `--write` would put values measured on
    the old spec into the new one (or undo the edit); the reports still say what won."""
    return Diagnostic(
        "KVS706",
        Severity.ERROR,
        "the spec changed while it was being tuned: the chosen values were not written "
        "into it (the report has them)",
        Span.whole_file(request.spec),
        help="rerun `kvsl tune ... --write` on the spec as it is now; the results cache "
        "makes settings already measured free",
    )


def _has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == Severity.ERROR for d in diagnostics)


def _warning(code: str, message: str, request: TuneRequest) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, Span.whole_file(request.dev))


def _report(
    request: TuneRequest,
    plan: Plan,
    dev: list[Example],
    result: TuneResult,
    warnings: list[Diagnostic],
) -> dict[str, Any]:
    from kvsl import __version__

    def trial(t: Trial | None) -> dict[str, object] | None:
        return t.to_dict() if t is not None else None

    return {
        "kvsl_version": __version__,
        "command": sys.argv,
        "style": plan.style,
        "spec": request.spec,
        "plan_hash": plan.plan_hash,
        "dev": {
            "path": request.dev,
            "format": dev[0].source if dev else request.format,
            "sha256": file_sha256(request.dev),
            "examples": len(dev),
        },
        "alpha": request.alpha,
        "forced_choice": request.forced_choice,
        "max_new_tokens": request.max_new_tokens,
        "rungs": [list(r) for r in result.rungs],
        "fallbacks": result.fallbacks,
        "chosen": trial(result.chosen),
        "settings": [trial(t) for t in final_trials(result.trials)],
        "trials": [trial(t) for t in result.trials],
        "generated_now": result.generated,
        "seconds": round(result.seconds, 1),
        "warnings": [d.to_dict() for d in warnings],
    }


def _comment(report: dict[str, Any]) -> str:
    chosen, dev = report["chosen"], report["dev"]
    return (
        f"{date.today().isoformat()} on dev `{Path(dev['path']).name}` "
        f"({counted(dev['examples'], 'question')}, sha256 {dev['sha256'][:12]}): adherence x novelty "
        f"{chosen['adherence']:.2f} (plain {chosen['plain_adherence']:.2f}), accuracy "
        f"{100 * chosen['accuracy']:.1f}% (plain {100 * chosen['plain_accuracy']:.1f}%, "
        f"McNemar p {chosen['p_mcnemar']:.2f})"
    )
