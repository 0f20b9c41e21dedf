"""`kvsl build` as one library function: a `BuildRequest` in, a `BuildResult` out.

The CLI parses its flags into a `BuildRequest`, calls `build_spec`, and prints the
artifact's path; a server or an editor can make the same call. `build_spec` does what
comes before the build itself: the spec is compiled, threads, device and precision are
set up (`kvsl.engine.setup.prepare`), and the extraction precision is chosen.

    >>> result = build_spec(BuildRequest(Path("specs/step_by_step.kvs")))   # doctest: +SKIP
    >>> result.path.name, result.built                                        # doctest: +SKIP
    ('step-by-step-1f0c2b9e8a7d.safetensors', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kvsl.engine.build import BuildResult
    from kvsl.engine.precision import PrecisionChoice


@dataclass(frozen=True)
class BuildRequest:
    """Every setting of one `kvsl build`.

    `spec` is a `.kvs` file (a built-in style name is resolved by the caller,
    `kvsl.builtin.resolve_target`). `precision`: `auto` takes the spec's
    `extract { precision }` when it sets one, else bf16 where the device runs it fast and
    fp32 elsewhere; `fp32` or `bf16` override the spec.
    """

    spec: Path
    force: bool = False  # rebuild even when an up-to-date artifact exists
    precision: str = "auto"
    out_dir: Path | None = None  # None: `.kvsl/artifacts/` beside the spec (or the cache)
    progress: bool = True  # a progress bar on the console
    threads: int | None = None  # None: $KVSL_THREADS, else the cores this process may use
    device: str = "auto"
    device_map: str | None = None  # transformers' device_map (replaces `device`)


def build_precision(spec: Path, requested: str, detected: PrecisionChoice) -> PrecisionChoice:
    """The extraction precision: the flag, else the spec's explicit one, else the detected one."""
    from kvsl.engine.precision import PrecisionChoice

    if requested != "auto":
        return PrecisionChoice(requested, f"--precision {requested}")
    from kvsl.lang.extends import Session
    from kvsl.lang.schema import PRECISIONS

    decl, _ = Session().resolve(str(spec))
    written = decl.choice("extract", "precision", PRECISIONS) if decl is not None else None
    if written is not None:
        return PrecisionChoice(written, "the spec's `extract { precision }`")
    return detected


def build_spec(request: BuildRequest, *, console: Any = None) -> BuildResult:
    """Build the artifact of `request.spec` unless an up-to-date one exists.

    Errors come in the order a user fixes them: `--precision` (KVS314), the device map
    (KVS316), the spec (its
    diagnostics, exit 1), then threads and the device (KVS313, KVS309). `console` (a rich
    Console) gets the setup line (`kvsl build: 2 threads, fp32 (...), cpu, one process`)
    and the build's messages.
    """
    from kvsl.engine.build import build
    from kvsl.engine.placement import parse_device_map
    from kvsl.engine.setup import check_precision, prepare
    from kvsl.lang import load_plan

    check_precision(request.precision)  # KVS314: a flag's value comes before the spec
    placement = parse_device_map(request.device_map) if request.device_map else None
    plan = load_plan(request.spec)
    setup = prepare(
        threads=request.threads,
        device=request.device,
        precision="auto",
        device_map=request.device_map,
    )
    chosen = build_precision(request.spec, request.precision, setup.precision)
    if console is not None:
        console.print(f"kvsl build: {setup.line(chosen)}")
    return build(
        plan,
        force=request.force,
        precision=chosen.name,
        console=console,
        out_dir=request.out_dir,
        progress=request.progress,
        device=setup.device,
        device_map=placement,
    )
