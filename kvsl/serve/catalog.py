"""What a server serves: one loaded model and its styles, each ready to steer.

`load_catalog` is the server's start-up: it loads the model once, builds (or verifies) the
artifact of every spec it is given through the same `kvsl.engine.build.build` that
`kvsl build` and `kvsl run` use, and checks that every style fits the model. A style's
settings for one request (`value`, `key`, `layers`) are resolved here into a `CacheEdit`,
the same way `kvsl run --value/--key/--layers` resolves them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError
from kvsl.lang.plan import DEFAULT_MODEL, ModelRef, Plan
from kvsl.lang.reading import close_file_hint
from kvsl.lang.source import Span


@dataclass(frozen=True)
class ServedStyle:
    """A style a request can ask for: its plan (defaults), vectors and offset token."""

    name: str
    plan: Plan
    vectors: Any  # kvsl.engine.vectors.SteeringVectors
    offset_id: int
    artifact: Path

    @property
    def system_prompt(self) -> str | None:
        return self.plan.contrast.system_prompt


@dataclass
class Catalog:
    """The served model (`model_id`) and its styles by name (model ids `MODEL:STYLE`)."""

    model_id: str
    loaded: Any  # kvsl.engine.models.LoadedModel
    styles: dict[str, ServedStyle]

    def model_ids(self) -> list[str]:
        return [self.model_id, *(f"{self.model_id}:{name}" for name in self.styles)]


def model_id_for(ref: ModelRef) -> str:
    """The public name of a model: its embedded or hub name, or a local file's stem.

    >>> model_id_for(ModelRef("../models/tiny-llama", "directory", "/m/tiny-llama"))
    'tiny-llama'
    >>> model_id_for(ModelRef("smollm2-135m", "embedded", "smollm2-135m"))
    'smollm2-135m'
    """
    if ref.kind in ("directory", "gguf"):
        return Path(ref.location).stem if ref.kind == "gguf" else Path(ref.location).name
    return ref.name


def _same_model(a: ModelRef, b: ModelRef) -> bool:
    return (a.kind, a.location) == (b.kind, b.location)


def _plans(targets: list[str]) -> list[tuple[Plan, bool, Path]]:
    """(plan, is_spec, path) for each target: a spec, a built-in style name, or an artifact."""
    from kvsl.builtin import resolve_target
    from kvsl.engine.run import load_target

    found = []
    for target in targets:
        path = resolve_target(target, code="KVS455")
        if not path.exists():
            raise KvslError.one(
                "KVS455",
                f"`{target}` does not exist",
                Span.whole_file(str(path)),
                help=close_file_hint(str(path), (".kvs", ".safetensors"))
                + "pass `.kvs` specs, built-in style names or artifacts written by `kvsl build`",
                exit_code=ExitCode.USAGE,
            )
        plan = load_target(path, instead="kvsl serve SPEC.kvs")  # as `kvsl run` reads it
        found.append((plan, path.suffix == ".kvs", path))
    return found


def _check_one_model(plans: list[tuple[Plan, bool, Path]], model: str | None) -> ModelRef:
    from kvsl.engine.models import resolve_ref

    wanted = resolve_ref(model) if model is not None else None
    for plan, _, path in plans:
        if wanted is None:
            wanted = plan.model
        elif not _same_model(wanted, plan.model):
            raise KvslError.one(
                "KVS800",
                f"`{path}` is for model `{plan.model.name}`, not `{wanted.name}`",
                Span.whole_file(str(path)),
                help="serve styles of one model per server (start another one on another port)",
                exit_code=ExitCode.USAGE,
            )
    return wanted or resolve_ref(DEFAULT_MODEL)


def load_catalog(
    targets: list[str],
    *,
    model: str | None = None,
    device: str | None = None,
    precision: str = "fp32",
    console: Any = None,
) -> Catalog:
    """Load the model and every style; build missing or stale artifacts first.

    >>> catalog = load_catalog(["step-by-step"])   # doctest: +SKIP
    >>> catalog.model_ids()                          # doctest: +SKIP
    ['smollm2-135m', 'smollm2-135m:step-by-step']
    """
    import torch

    from kvsl.engine.models import load_model
    from kvsl.engine.prompting import offset_token_id
    from kvsl.engine.run import vectors_for

    plans = _plans(targets)
    ref = _check_one_model(plans, model)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    loaded = load_model(ref, dtype=dtype, device=device)
    styles: dict[str, ServedStyle] = {}
    for plan, _, path in plans:
        if plan.style in styles:
            raise KvslError.one(
                "KVS801",
                f"style `{plan.style}` is given twice (`{styles[plan.style].artifact}` and `{path}`)",
                Span.whole_file(str(path)),
                help="give each served style its own name (`style \"NAME\"` in the spec)",
                exit_code=ExitCode.USAGE,
            )
        # As `kvsl run` does: a spec is built first, the vectors checked against the model.
        artifact, vectors = vectors_for(
            plan, path, loaded, precision=precision, console=console, progress=False
        )
        offset = offset_token_id(loaded.tokenizer, vectors.offset_token, Span.whole_file(str(path)))
        styles[plan.style] = ServedStyle(plan.style, plan, vectors, offset, artifact)
    return Catalog(model_id_for(ref), loaded, styles)


def check_options(batching: str = "continuous", **values: float) -> None:
    """KVS802 for every server limit out of its range (all reported at once)."""
    problems = []
    if batching not in ("continuous", "dynamic"):
        problems.append(f"`--batching {batching}` must be continuous or dynamic")
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if name == "port" and not 0 <= value <= 65535:
            problems.append(f"`{flag} {value:g}` is not a port (0..65535)")
        elif name == "gather_ms" and value < 0:
            problems.append(f"`{flag} {value:g}` must not be negative")
        elif name == "shutdown_timeout":
            if not 0 <= value < float("inf"):  # nan and inf ended a stop in a traceback
                problems.append(f"`{flag} {value:g}` must be a number of seconds, 0 or more")
        elif name in ("max_coefficient", "request_timeout") and not value > 0:
            problems.append(f"`{flag} {value:g}` must be greater than 0")
        elif name not in ("port", "gather_ms", "max_coefficient", "request_timeout") and value < 1:
            problems.append(f"`{flag} {value:g}` must be at least 1")
    if problems:
        from kvsl.lang.diagnostics import Diagnostic, Severity

        raise KvslError(
            [
                Diagnostic("KVS802", Severity.ERROR, p, COMMAND_LINE, help="see `kvsl serve --help`")
                for p in problems
            ],
            ExitCode.USAGE,
        )


def api_key_from(option: str | None) -> str | None:
    """The API key: `--api-key`, else `KVSL_API_KEY`, else none (an empty value is none)."""
    key = option if option is not None else os.environ.get("KVSL_API_KEY")
    return key or None
