"""`kvsl build` and `kvsl inspect`: the build wing (registered on kvsl.cli.app).

`kvsl build` fills a `kvsl.engine.build_request.BuildRequest` from its flags and calls
`build_spec`. torch, transformers and safetensors are imported inside the command bodies
only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kvsl.base.interrupt import stop_on_interrupt
from kvsl.base.plurals import counted
from kvsl.cli import app
from kvsl.cli.errors import reported_errors
from kvsl.cli.options import DeviceMapOption, DeviceOption, ThreadsOption


@app.command("build")
def build_command(
    spec: Annotated[
        Path,
        typer.Argument(
            help="The `.kvs` spec to build steering vectors for, or a built-in style name "
            "(`kvsl styles`)."
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if an up-to-date artifact exists.")
    ] = False,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="Extraction precision. auto: the spec's `extract { precision }` if it sets "
            "one, else bf16 where the device runs it fast (CUDA with bf16, CPUs with AMX) "
            "and fp32 elsewhere. fp32 or bf16 override the spec.",
        ),
    ] = "auto",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the artifact (default: .kvsl/artifacts/ next to the spec, or "
            "~/.cache/kvsl/artifacts/ when that folder is read-only).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
) -> None:
    """Extract KV-cache steering vectors for a spec into a content-addressed artifact.

    Unchanged specs are not rebuilt. Prints the artifact path on stdout. Under `torchrun`
    or `accelerate launch` the pairs are split across processes (docs/scale.md).
    """
    with reported_errors():
        from rich.console import Console

        from kvsl.builtin import resolve_target
        from kvsl.engine.build_request import BuildRequest, build_spec
        from kvsl.engine.distributed import is_main

        request = BuildRequest(
            resolve_target(spec),
            force=force,
            precision=precision,
            out_dir=out,
            progress=not quiet,
            threads=threads,
            device=device,
            device_map=device_map,
        )
        # soft_wrap: a status line stays one line in a log (rich wraps at 80 off a terminal)
        console = Console(
            stderr=True, highlight=False, markup=False, soft_wrap=True, quiet=not is_main()
        )
        # Ctrl-C or SIGTERM: exit 130 or 143 (kvsl.base.interrupt); the artifact is written
        # atomically, so it is whole or absent, and a rerun builds it.
        with stop_on_interrupt(None, note="no artifact is half-written; run again to build"):
            result = build_spec(request, console=console)
        if is_main():
            print(result.path)


@app.command("inspect")
def inspect_command(
    artifact: Annotated[
        Path, typer.Argument(help="A `.safetensors` artifact written by `kvsl build`.")
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the manifest as JSON (with norms).")
    ] = False,
) -> None:
    """Show an artifact's manifest and per-layer key/value norms."""
    with reported_errors():
        from kvsl.engine.artifact import load_artifact, recorded_coefficients

        _refuse_a_spec(artifact)
        vectors = load_artifact(artifact)
        norms = {
            layer: (float(vectors.keys[layer].norm()), float(vectors.values[layer].norm()))
            for layer in sorted(vectors.keys)
        }
        if json_output:
            import json

            manifest = {k: v for k, v in vectors.manifest.items() if k != "artifact_path"}
            manifest["norms"] = {
                str(layer): {"key": k, "value": v} for layer, (k, v) in norms.items()
            }
            print(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False))
            return
        coefficients = recorded_coefficients(vectors.manifest, vectors.num_layers) or {}
        _print_inspection(artifact, vectors.manifest, norms, coefficients)


def _refuse_a_spec(artifact: Path) -> None:
    """KVS401 naming the way to the artifact, for a spec or a built-in style's name given
    to `kvsl inspect` (a new user's first guess; the generic "not a safetensors file" and
    "does not exist" say nothing about where the artifact is)."""
    from kvsl.builtin import builtin_spec
    from kvsl.lang.diagnostics import ExitCode, KvslError
    from kvsl.lang.source import Span

    name = str(artifact)
    is_spec = artifact.suffix == ".kvs" and artifact.is_file()
    if not (is_spec or (not artifact.exists() and builtin_spec(name) is not None)):
        return
    kind = "a spec" if is_spec else "a built-in style's name"
    raise KvslError.one(
        "KVS401",
        f"`{name}` is {kind}, not an artifact",
        Span.whole_file(name),
        help=f"`kvsl build {name}` builds its vectors (or finds them built) and prints the "
        "artifact's path to pass here; `kvsl run` takes the spec itself",
        exit_code=ExitCode.ERRORS,
    )


def _object(value: Any) -> dict[str, Any]:
    """A manifest part that should be an object, or {}: a manifest is data someone may edit
    (its checksum recomputed), and only what a load reads is checked on load."""
    return value if isinstance(value, dict) else {}


def _print_inspection(
    path: Path,
    manifest: dict[str, Any],
    norms: dict[int, tuple[float, float]],
    coefficients: dict[int, tuple[float, float]],
) -> None:
    from rich.console import Console
    from rich.table import Table

    # markup=False: a style name or description such as "[/x]" is text, not rich markup
    console = Console(highlight=False, markup=False)
    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold")
    about.add_column()
    rows = _about_rows(path, manifest)
    for name, value in rows:
        about.add_row(name, str(value))  # a manifest value of any JSON type
    console.print(about)
    table = Table(title="per-layer steering vectors (L2 norm)", title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column("‖S_k‖", justify="right")
    table.add_column("‖S_v‖", justify="right")
    table.add_column("c_k", justify="right")
    table.add_column("c_v", justify="right")
    for layer, (key_norm, value_norm) in norms.items():
        ck, cv = coefficients.get(layer, (None, None))
        table.add_row(
            str(layer),
            f"{key_norm:.4f}",
            f"{value_norm:.4f}",
            "-" if ck is None else f"{ck:g}",
            "-" if cv is None else f"{cv:g}",
        )
    console.print(table)


def _about_rows(path: Path, manifest: dict[str, Any]) -> list[tuple[str, object]]:
    """The name/value rows `kvsl inspect` prints above the per-layer table."""
    model = _object(manifest.get("model"))
    geometry = _object(manifest.get("geometry"))
    position = _object(manifest.get("position"))
    stats = _object(manifest.get("stats"))
    rows: list[tuple[str, object]] = [
        ("artifact", str(path)),
        ("style", f"{manifest.get('style')}  {manifest.get('description') or ''}".rstrip()),
        ("model", f"{model.get('name')} ({model.get('architecture')}, {model.get('kind')})"),
        ("revision", model.get("revision") or "-"),
        (
            "config / tokenizer / template",
            f"{str(model.get('config_sha256'))[:12]} / {str(model.get('tokenizer_sha256'))[:12]} / "
            f"{str(model.get('chat_template_sha256'))[:12]}",
        ),
        (
            "KV geometry",
            f"{counted(geometry.get('num_layers'), 'layer')} × "
            f"{counted(geometry.get('kv_heads'), 'KV head')} × head_dim {geometry.get('head_dim')}",
        ),
        (
            "position",
            f"{position.get('convention')}, offset token {position.get('offset_token')!r} "
            f"(id {position.get('offset_token_id')})"
            + (f", prefix {position['prefix']!r}" if position.get("prefix") else ""),
        ),
        (
            "contrast",
            f"{counted(manifest.get('pairs'), 'pair')} × {counted(manifest.get('shots'), 'shot')}, "
            f"{manifest.get('selection')} (seed {manifest.get('seed')})"
            + (", targets from a query pool" if manifest.get("questions_sha256") else ""),
        ),
        ("precision", f"{manifest.get('precision')} (computed in {manifest.get('compute_dtype')})"),
        ("vector hash", str(manifest.get("vector_hash"))),
        ("plan hash", str(manifest.get("plan_hash"))),
        (
            "created",
            f"{manifest.get('created')} by kvsl {manifest.get('kvsl_version')} "
            f"(format {manifest.get('format_version')})",
        ),
    ]
    if stats:
        tokens = counted(stats.get("prompt_tokens"), "prompt token")
        rows.append(
            (
                "extraction",
                f"{stats.get('seconds')} s, batch size {stats.get('batch_size')}, "
                f"{stats.get('computed_tokens')} of {tokens} computed",
            )
        )
    return rows
