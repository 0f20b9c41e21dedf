"""`kvsl teach` as one library function: a `TeachRequest` in, a `TeachReport` out.

The CLI parses its flags into a `TeachRequest`, calls `teach_spec`, and prints the
report (or, for a dry run, the rendered prompts); a server or an editor can make the
same call. `teach_spec` compiles the spec, refuses to write a built-in spec's trace file
(KVS518), then runs the teacher (`kvsl.teacher.run.teach`) or renders its prompts only
(`dry_run`).

    >>> request = TeachRequest(Path("my_style.kvs"), TeachOptions(limit=2), dry_run=True)
    >>> teach_spec(request).prompts[0].prompt         # doctest: +SKIP
    'Solve the problem below ...'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kvsl.base.locations import is_packaged
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span
from kvsl.teacher import TeachOptions, TeachReport, dry_run, teach

__all__ = ["TeachOptions", "TeachRequest", "teach_spec"]


@dataclass(frozen=True)
class TeachRequest:
    """Every setting of one `kvsl teach`.

    `spec` is a `.kvs` file; a built-in style name is resolved by the caller
    (`kvsl.builtin.resolve_target`), who names it in `given` (what the user typed), so
    that a built-in spec's own trace file is never written (KVS518).
    """

    spec: Path
    options: TeachOptions = field(default_factory=TeachOptions)
    dry_run: bool = False  # render the prompts; send nothing, write nothing
    given: str | None = None  # the spec as the user named it (None: `spec` itself)


def teach_spec(request: TeachRequest) -> TeachReport:
    """Fill the spec's trace file from its teacher (resuming), or, for a dry run, render
    the prompts a run would send.

    Raises what `kvsl.teacher.run.teach` raises (`TeachAborted`, with the report so far,
    when the run stops midway), and KVS518 for a built-in spec's own trace file.
    """
    from kvsl.lang import load_plan

    if not request.dry_run:
        refuse_builtin_output(request)
    plan = load_plan(request.spec)
    if request.dry_run:
        return dry_run(plan, request.options)
    return teach(plan, request.options)


def refuse_builtin_output(request: TeachRequest) -> None:
    """KVS518 unless the run writes where the user asked.

    A built-in spec, whether named by its style name (which finds the kvsl checkout's own
    `specs/` under an editable install) or lying in the installed package, keeps its trace
    file: `--traces FILE` says where the traces go. A spec given by its path is the user's.
    """
    path, spec, traces = request.spec, request.given or str(request.spec), request.options.traces
    packaged = is_packaged(path)
    by_name = path != Path(spec)
    target = Path(traces) if traces is not None else None
    if target is not None and not is_packaged(target):
        return
    if not (packaged or by_name or target is not None):
        return
    where = (
        "inside the installed package"
        if packaged or target is not None
        else f"of the kvsl checkout (`{path}`)"
    )
    raise KvslError.one(
        "KVS518",
        f"`{spec}` is a built-in spec {where}: its trace file is not to be written",
        Span.whole_file(str(path)),
        help="name the file to fill with `--traces FILE` (outside the package), or copy "
        f"`specs/` and `templates/` from `{path.parent.parent}` somewhere of your own and "
        "teach the copied spec (`--dry-run` works here)",
        exit_code=ExitCode.USAGE,
    )
