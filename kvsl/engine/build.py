"""`kvsl build`: plan → artifact, content-addressed by the plan's vector hash.

An artifact lives at `<spec dir>/.kvsl/artifacts/<style>-<vector_hash[:12]>.safetensors`
(or in `--out DIR`). A spec whose folder is not writable, or a built-in spec installed as
package data (never written to), builds into the user cache instead:
`$KVSL_CACHE_DIR/artifacts/`, by default `~/.cache/kvsl/artifacts/`. Building a plan
whose artifact already exists, and verifies, does nothing and says so; so does a plan
whose spec ships verified prebuilt vectors (`kvsl.engine.shipped`: the built-in styles on
the embedded model); `force=True` rebuilds. The artifact is written atomically, so Ctrl-C or a crash mid-build leaves the
previous state (no file, or the old complete file), and a rerun finishes the job.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvsl.base.locations import cache_dir, is_packaged
from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError
from kvsl.lang.plan import Plan
from kvsl.lang.source import Span

ARTIFACT_DIR = Path(".kvsl") / "artifacts"


@dataclass(frozen=True)
class BuildResult:
    """Where the artifact is, whether this call built it, and how long the call took."""

    path: Path
    built: bool
    seconds: float


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-") or "style"


def artifact_path_for(plan: Plan, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the artifact of `plan` lives (content-addressed by its vector hash).

    >>> artifact_path_for(plan)   # doctest: +SKIP
    PosixPath('/home/me/specs/.kvsl/artifacts/step-by-step-1f0c2b9e8a7d.safetensors')
    """
    folder = Path(out_dir) if out_dir is not None else artifact_dir_for(plan.spec_path)
    return folder / f"{_slug(plan.style)}-{plan.vector_hash[:12]}.safetensors"


def artifact_dir_for(spec_path: str | os.PathLike[str]) -> Path:
    """The folder for a spec's artifacts: `.kvsl/artifacts/` beside it, if kvsl may write there.

    A built-in spec inside an installed package, or one in a folder the user cannot write
    to, gets `user_artifact_dir()` instead (artifacts are content-addressed, so specs in
    different places share that folder safely).

    >>> artifact_dir_for("specs/step_by_step.kvs")   # doctest: +SKIP
    PosixPath('specs/.kvsl/artifacts')
    """
    beside = Path(spec_path).parent / ARTIFACT_DIR
    if is_packaged(spec_path) or not _writable(beside):
        return user_artifact_dir()
    return beside


def user_artifact_dir() -> Path:
    """Artifacts of read-only specs: $KVSL_CACHE_DIR/artifacts, else ~/.cache/kvsl/artifacts.

    (`kvsl.base.locations.cache_dir`; the model cache is its sibling `models/`.)
    """
    return cache_dir("artifacts")


def _writable(folder: Path) -> bool:
    """Whether `folder` exists and is writable, or could be created (its nearest parent is)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def with_precision(plan: Plan, precision: str | None) -> Plan:
    """The plan with another extraction precision, hashes recomputed (a new artifact)."""
    if precision is None or precision == plan.extract.precision:
        return plan
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    fields.pop("vector_hash")
    fields.pop("plan_hash")
    fields["extract"] = dataclasses.replace(plan.extract, precision=precision)  # type: ignore[arg-type]
    return Plan.create(**fields)


def build(
    plan: Plan,
    *,
    force: bool = False,
    precision: str | None = None,
    loaded: Any = None,
    console: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    device: str | None = "auto",
    device_map: str | dict[str, Any] | None = None,
) -> BuildResult:
    """Build the artifact of `plan` unless an up-to-date one exists; returns where it is.

    `precision` overrides the plan's (`"fp32"`/`"bf16"`; it changes the vector hash).
    `loaded` reuses a model already in memory (it must be the plan's model); otherwise
    the model is loaded on `device` or spread by `device_map`.

    Under `torchrun` / `accelerate launch` (the process group joined, see
    `kvsl.engine.distributed`) every rank extracts its share of the pairs, the sums are
    reduced, and rank 0 alone writes the artifact; the others wait for it and only rank 0
    prints.

    >>> result = build(load_plan("specs/step_by_step.kvs"))   # doctest: +SKIP
    >>> result.built, result.path.name                         # doctest: +SKIP
    (True, 'step-by-step-1f0c2b9e8a7d.safetensors')
    """
    from rich.console import Console

    from kvsl.engine.artifact import describe
    from kvsl.engine.contrast import plan_traces
    from kvsl.engine.distributed import is_main
    from kvsl.engine.extract import extract_means

    started = time.perf_counter()
    main = is_main()
    console = console if console is not None and main else Console(stderr=True, markup=False, quiet=not main)
    plan = with_precision(plan, precision)
    path = artifact_path_for(plan, out_dir)
    warn = _warner(console)
    if not force:
        ready = _existing_artifact(plan, path, loaded, console)
        if ready is None and out_dir is None:
            ready = _shipped_artifact(plan, loaded, console, warn)
        if ready is not None:
            return BuildResult(ready, False, time.perf_counter() - started)
        _explain_older_hash(plan, path, console)
    if main:
        _ensure_folder(path.parent)  # before minutes of extraction, not after them
    # Read once, before a model is loaded: a changed (KVS308) or bad trace file stops here,
    # and the bytes checked against the plan's hash are the bytes the pairs are made of.
    traces = plan_traces(plan)
    if loaded is None:
        loaded = _load(plan, console, device, device_map)
    extraction = extract_means(
        loaded, plan, traces=traces, progress=progress and main, console=console, on_warning=warn
    )
    vectors = describe(extraction, plan, loaded)  # the manifest: what the artifact records
    _save(vectors, loaded, path, main)
    seconds = time.perf_counter() - started
    stats = vectors.manifest.get("stats", {})
    assert isinstance(stats, dict)
    console.print(
        _marked(
            "built",
            "green",
            f" `{plan.style}`: {counted(vectors.manifest.get('pairs'), 'pair')} × "
            f"{counted(plan.contrast.shots, 'shot')}, "
            f"{counted(loaded.geometry.num_layers, 'layer')}, extraction "
            f"{stats.get('seconds', 0):.1f} s → {_shown(path)}",
        )
    )
    return BuildResult(path, True, seconds)


def _ensure_folder(folder: Path) -> None:
    """Create the artifact's folder now, or KVS406 (`kvsl.lang.files.output_folder_problem`)."""
    from kvsl.lang.files import output_folder_problem

    reason = output_folder_problem(folder)
    if reason is not None:
        raise KvslError.one(
            "KVS406",
            f"cannot write artifacts into `{folder}`: {reason}",
            Span.whole_file(str(folder)),
            help="pass a folder to `--out` (it is created if missing)",
            exit_code=ExitCode.ENVIRONMENT,
        )


def _marked(word: str, color: str, rest: str) -> Any:
    """`word` in `color`, then `rest` as plain text: names and paths in it (a spec's style,
    a folder called `a[/b]`) are never read as rich markup."""
    from rich.text import Text

    return Text.assemble((word, color), rest)


def _warner(console: Any) -> Callable[[Diagnostic], None]:
    """Warnings of the build (KVS307, KVS312, ...) printed on the build's console."""
    from kvsl.lang.render import render_diagnostics

    def warn(diagnostic: Diagnostic) -> None:
        console.print(render_diagnostics([diagnostic], format="human", color=False))

    return warn


def _existing_artifact(plan: Plan, path: Path, loaded: Any, console: Any) -> Path | None:
    """`path` when the artifact there is up to date for `plan` (and the model), else None.

    Says on `console` why an artifact that is there gets rebuilt.
    """
    from kvsl.engine.artifact import load_artifact

    if not path.exists():
        return None
    try:
        existing = load_artifact(path)
    except KvslError as err:
        console.print(
            f"existing artifact is unusable ({err.diagnostics[0].message}); rebuilding",
            style="yellow",
        )
        return None
    changed = _model_change(existing.manifest, plan, loaded)
    if existing.manifest.get("vector_hash") != plan.vector_hash:
        console.print("existing artifact belongs to another plan; rebuilding", style="yellow")
        return None
    if changed is not None:
        console.print(
            f"the model's {changed} changed since this artifact was built; rebuilding",
            style="yellow",
        )
        return None
    console.print(
        _marked(
            "up to date",
            "green",
            f": `{plan.style}` is unchanged, nothing to build ({_shown(path)}; `--force` rebuilds)",
        )
    )
    return path


def _explain_older_hash(plan: Plan, path: Path, console: Any) -> None:
    """Say so when the folder holds this plan's artifact under an older vector-hash rule.

    The artifact's name carries the vector hash, so after a change of its rule
    (`VECTOR_HASH_FORMAT`) the new name is free and the old file is left beside it. The
    plan hash did not change: the same plan hash under another vector hash means the
    same inputs hashed by an earlier kvsl, and the rebuild happens once.
    """
    from rich.text import Text

    from kvsl.engine.artifact import read_manifest

    for other in sorted(path.parent.glob(f"{_slug(plan.style)}-*.safetensors")):
        try:
            manifest = read_manifest(other)
        except (KvslError, OSError):
            continue
        if manifest.get("plan_hash") == plan.plan_hash and other != path:
            # Rich Text, not markup: the console reads none (a style may be named `a[/b]`).
            console.print(
                Text(
                    f"`{plan.style}` was built by an earlier kvsl ({_shown(other)}), whose "
                    "vector hash also covered the teacher template; extracting once under the "
                    "current hash (the old file may be deleted)",
                    style="yellow",
                )
            )
            return


def _shipped_artifact(
    plan: Plan, loaded: Any, console: Any, warn: Callable[[Diagnostic], None]
) -> Path | None:
    """The prebuilt vectors shipped for `plan` (and fitting `loaded`, if given), or None."""
    from kvsl.engine.shipped import find_shipped

    shipped = find_shipped(plan, on_warning=warn)
    if shipped is not None and loaded is not None:
        shipped = _fits(shipped, loaded, plan, warn)
    if shipped is not None:
        console.print(
            _marked(
                "up to date",
                "green",
                f": `{plan.style}` ships with prebuilt vectors for `{plan.model.name}`, "
                f"nothing to build ({_shown(shipped)}; `--force` rebuilds)",
            )
        )
    return shipped


def _load(plan: Plan, console: Any, device: str | None, device_map: Any) -> Any:
    from kvsl.engine.models import load_model, precision_dtype

    console.print(f"loading model `{plan.model.name}` ({plan.extract.precision})")
    return load_model(
        plan.model,
        dtype=precision_dtype(plan.extract.precision),
        device=device,
        device_map=device_map,
    )


def _save(vectors: Any, loaded: Any, path: Path, main: bool) -> None:
    """Check what was extracted against the model, and write it (rank 0 alone)."""
    from kvsl.engine.artifact import check_compatible, save_artifact
    from kvsl.engine.distributed import barrier

    check_compatible(vectors, loaded)  # sanity: what we extracted fits what we loaded
    if main:
        save_artifact(vectors, path)
    barrier()  # the other ranks read the artifact only once rank 0 has written it


def _model_change(manifest: dict[str, Any], plan: Plan, loaded: Any) -> str | None:
    """What of the model differs from the one the artifact was built with, or None.

    The vector hash names the model (its path), not its files: a local directory saved
    again with other weights or another config keeps its hash. So its identity is compared
    too: the loaded model's when one is given, else what can be read without loading the
    weights (`kvsl.engine.identity.identity_on_disk`).
    """
    from kvsl.engine.artifact import identity_mismatch
    from kvsl.engine.identity import identity_on_disk

    built = manifest.get("model")
    if not isinstance(built, dict):
        return None
    here = loaded.identity if loaded is not None else identity_on_disk(plan.model)
    mismatch = identity_mismatch(built, here)
    return None if mismatch is None else mismatch[1]


def _fits(path: Path, loaded: Any, plan: Plan, warn: Any) -> Path | None:
    """`path` when the shipped vectors fit the model in memory, else None and KVS312.

    The shipped vectors name the embedded model by its fingerprint (config, tokenizer and
    chat-template hashes). Another transformers version may describe the same weights
    with another config; then the vectors are extracted for this model instead.
    """
    from kvsl.engine.artifact import check_compatible, load_artifact
    from kvsl.lang.diagnostics import Severity

    try:
        check_compatible(load_artifact(path), loaded)
    except KvslError as err:
        warn(
            Diagnostic(
                "KVS312",
                Severity.WARNING,
                f"the shipped vectors of `{plan.style}` do not fit this model "
                f"({err.diagnostics[0].message}); extracting instead",
                Span.whole_file(plan.spec_path),
                help="the new vectors are cached, so this happens once",
            )
        )
        return None
    return path


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
