"""`kvsl run` as one library function: a `RunRequest` in, a `RunResult` out.

The CLI parses its flags into a `RunRequest`, calls `run`, and renders the `RunResult`
as text, JSON or JSON lines; a server or an editor can make the same call. Status lines,
progress bars and build messages go to the `console` given (stderr in the CLI); the
generated text comes back in the result, or, streamed, through a `stream` callback.

    >>> request = RunRequest(Path("specs/step_by_step.kvs"), (("Why is the sky blue?", {}),))
    >>> run(request).records[0]["steered"]       # doctest: +SKIP
    'The sky looks blue because ...'

`load_target` and `vectors_for` (a spec or an artifact → its plan, its checked vectors)
are shared with `kvsl serve`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import COMMAND_LINE, Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.overrides import with_overrides
from kvsl.lang.plan import GenerationSettings, LayerSpan, Plan
from kvsl.lang.source import Span

if TYPE_CHECKING:
    from kvsl.engine.vectors import SteeringVectors

# A prompt and the extra fields of its input line (`{"prompt": ..., "id": 7}`), which its
# output record carries along.
Prompt = tuple[str, Mapping[str, Any]]


@dataclass(frozen=True)
class RunRequest:
    """Every setting of one `kvsl run`. None: the spec's (or the artifact's plan's) own value.

    `target` is a `.kvs` spec (built first when its artifact is missing or stale) or an
    artifact; a built-in style name is resolved by the caller (`kvsl.builtin.resolve_target`).
    `device` and `precision` are already resolved (`kvsl.engine.setup.prepare`).
    """

    target: Path
    prompts: tuple[Prompt, ...]
    layers: tuple[LayerSpan, ...] | None = None  # replaces the steered layers
    key: float | None = None  # c_k on every steered layer
    value: float | None = None  # c_v on every steered layer
    max_new_tokens: int | None = None
    sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    # Decoding controls by `GenerationSettings` field name (repetition_penalty, top_k, ...).
    controls: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    compare: bool = False  # also generate without steering, from the same prompt
    score: bool = False  # score each output for the style (`kvsl.styles`)
    force: bool = False  # rebuild the spec's vectors
    device: str | None = None  # None: the CPU
    precision: str = "fp32"  # the model's weights while generating: fp32 or bf16
    device_map: str | dict[str, Any] | None = None  # transformers' device_map (replaces device)


@dataclass(frozen=True)
class RunResult:
    """What a run generated, and the settings it generated with (overrides applied)."""

    plan: Plan
    artifact: Path
    coefficients: dict[int, tuple[float, float]]  # layer → (c_k, c_v)
    # One per prompt, in order: its extra fields, "prompt", "steered", and with
    # `compare` "plain", with `score` "scores" ({"steered": s, "plain": s}).
    records: tuple[dict[str, Any], ...]
    streamed: bool = False  # the steered text went to `stream` as it was generated

    @property
    def settings(self) -> GenerationSettings:
        return self.plan.generate

    def report(self) -> dict[str, Any]:
        """The JSON report (`kvsl run --format json`): the settings, then the records."""
        settings = self.settings
        return {
            "style": self.plan.style,
            "model": self.plan.model.name,
            "artifact": str(self.artifact),
            "coefficients": {str(layer): list(c) for layer, c in self.coefficients.items()},
            "generation": {
                "max_new_tokens": settings.max_new_tokens,
                "sample": settings.sample,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "seed": settings.seed,
                "stop": list(settings.stop),
                **settings.controls(),
            },
            "results": list(self.records),
        }


def _usage(code: str, message: str, help: str, span: Span = COMMAND_LINE) -> KvslError:
    return KvslError.one(code, message, span, help=help, exit_code=ExitCode.USAGE)


def load_target(target: Path, *, instead: str) -> Plan:
    """The plan of a spec (checked and lowered) or of an artifact (read from its manifest;
    KVS456 names `instead`, the command to run on the spec, when it holds none)."""
    if target.suffix == ".kvs":
        from kvsl.lang import load_plan

        return load_plan(target)
    from kvsl.engine.artifact import plan_of_artifact

    return plan_of_artifact(target, instead=instead)


def vectors_for(
    plan: Plan,
    target: Path,
    loaded: Any,
    *,
    precision: str = "fp32",
    force: bool = False,
    console: Any = None,
    progress: bool = True,
    device: str | None = "auto",
    device_map: str | dict[str, Any] | None = None,
) -> tuple[Path, SteeringVectors]:
    """The artifact of `target` and its vectors, checked against the `loaded` model.

    A spec is built first (nothing to do when its artifact is up to date); an artifact is
    used as it is. `precision` is the loaded model's: the model in memory is reused for an
    fp32 extraction only, since vectors are named by the plan and must not depend on it.
    """
    from kvsl.engine.artifact import check_compatible, load_artifact

    artifact = target
    if target.suffix == ".kvs":
        from kvsl.engine.build import build

        reuse = loaded if precision == plan.extract.precision == "fp32" else None
        result = build(
            plan,
            force=force,
            loaded=reuse,
            console=console,
            progress=progress,
            device=device,
            device_map=device_map,
        )
        artifact = Path(result.path)
    vectors = load_artifact(artifact)
    check_compatible(vectors, loaded)
    return artifact, vectors


def run(
    request: RunRequest,
    *,
    console: Any = None,
    quiet: bool = False,
    stream: Callable[[str], object] | None = None,
) -> RunResult:
    """Generate a steered continuation of each prompt of `request` (and a plain one with
    `compare`).

    `console` (a rich Console) gets the build's messages and scoring notes; unless `quiet`,
    also a status line and progress bars. `stream`, for a single prompt without `compare`,
    receives the steered text as it is generated (then a newline).
    """
    import torch

    from kvsl.engine.models import load_model
    from kvsl.engine.prompting import offset_token_id

    plan = load_target(request.target, instead="kvsl run SPEC.kvs")
    steered = _overridden(plan, request)  # KVS457 for the flags on this spec, before loading
    dtype = torch.bfloat16 if request.precision == "bf16" else torch.float32
    loaded = load_model(
        plan.model, dtype=dtype, device=request.device, device_map=request.device_map
    )
    artifact, vectors = vectors_for(
        plan,
        request.target,
        loaded,
        precision=request.precision,
        force=request.force,
        console=console,
        device=request.device,
        device_map=request.device_map,
    )
    plan = steered
    span = COMMAND_LINE if request.layers else Span.whole_file(plan.spec_path)
    coefficients = _coefficients(plan, loaded.geometry.num_layers, span)
    offset = offset_token_id(loaded.tokenizer, vectors.offset_token)  # KVS305 before any output
    bars = None if quiet else console
    if bars is not None:
        bars.print(_status_line(plan, coefficients, vectors.prefix))
    streamed = stream is not None and len(request.prompts) == 1 and not request.compare
    texts = _generate(
        request,
        plan,
        loaded,
        vectors,
        coefficients,
        offset,
        bars=bars,
        stream=stream if streamed else None,
    )
    records = _records(request, plan, texts, console)
    return RunResult(plan, artifact, coefficients, records, streamed)


def _overridden(plan: Plan, request: RunRequest) -> Plan:
    plan = with_overrides(
        plan,
        layers=request.layers,
        key=request.key,
        value=request.value,
        max_new_tokens=request.max_new_tokens,
        sample=request.sample,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        controls=request.controls,
    )
    # The flags against the spec's own settings (its `mode`, its `max_new_tokens`): the
    # same rules as the flags alone (`GenerationSettings.problems`).
    given = {name for name in ("max_new_tokens", "sample", "temperature", "top_p", "seed")
             if getattr(request, name) is not None} | set(request.controls)  # fmt: skip
    problems = plan.generate.problems(given)
    if problems:
        raise KvslError(
            [Diagnostic("KVS457", Severity.ERROR, problem, COMMAND_LINE,
                        help="see `kvsl run --help`; the spec's `generate` block gives the rest")
             for problem in problems],
            ExitCode.USAGE,
        )  # fmt: skip
    return plan


def _coefficients(plan: Plan, num_layers: int, span: Span) -> dict[int, tuple[float, float]]:
    try:
        return plan.steer.coefficients(num_layers)
    except ValueError as err:
        raise _usage(
            "KVS451",
            f"{err}",
            f"this model has layers 0..{num_layers - 1}; negative indices count from the end",
            span,
        ) from None


def _generate(
    request: RunRequest,
    plan: Plan,
    loaded: Any,
    vectors: SteeringVectors,
    coefficients: dict[int, tuple[float, float]],
    offset: int,
    *,
    bars: Any,
    stream: Callable[[str], object] | None,
) -> dict[str, list[str]]:
    """{"steered": texts} and, with `compare`, "plain": texts, in the prompts' order.

    Progress bars go to `bars` (a console, or None); a streamed text is its own progress.
    """
    from kvsl.engine.generate import TokenStreamer, chat_prompt
    from kvsl.engine.offline import generate_texts
    from kvsl.engine.steer import resolve_edit

    model, tokenizer = loaded.model, loaded.tokenizer
    settings = plan.generate  # plain (`compare`) and steered rows share it: a fair comparison
    edit = resolve_edit(vectors, coefficients)
    # Plain and steered share the prompt, the vectors' prefix included (the paper's prefix
    # variant), so that `compare` shows the effect of the cache edit alone.
    ids = [
        chat_prompt(tokenizer, text, plan.contrast.system_prompt, vectors.prefix)
        for text, _ in request.prompts
    ]
    streamer = TokenStreamer(tokenizer, settings.stop, write=stream) if stream else None

    def generate(steer: bool, on_batch: Callable[[int], object] | None) -> list[str]:
        return generate_texts(
            model,
            tokenizer,
            ids,
            settings=settings,
            offset_id=offset,
            edit=(edit if steer and not edit.is_empty else None),
            batch_size=request.batch_size,
            streamer=streamer if steer else None,
            on_batch=on_batch,
        )

    texts = {
        "steered": _with_progress(
            None if stream else bars, "steered", len(ids), lambda done: generate(True, done)
        )
    }
    if request.compare:
        texts["plain"] = _with_progress(bars, "plain", len(ids), lambda done: generate(False, done))
    return texts


def _with_progress(
    console: Any,
    label: str,
    total: int,
    work: Callable[[Callable[[int], object] | None], list[str]],
) -> list[str]:
    """`work(on_batch)` under a transient progress bar on `console` (none for one prompt)."""
    if console is None or total == 1:
        return work(None)
    from kvsl.base.progress import progress_display

    with progress_display(console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        return work(lambda done: progress.advance(task, done))


def _records(
    request: RunRequest, plan: Plan, texts: dict[str, list[str]], console: Any
) -> tuple[dict[str, Any], ...]:
    scores: dict[str, list[float] | None] = {}
    if request.score:
        scores["steered"] = _scores(plan, texts["steered"], console)
        if "plain" in texts and scores["steered"] is not None:
            scores["plain"] = _scores(plan, texts["plain"], console)
    records = []
    for i, (text, extra) in enumerate(request.prompts):
        record: dict[str, Any] = {**extra, "prompt": text, "steered": texts["steered"][i]}
        if "plain" in texts:
            record["plain"] = texts["plain"][i]
        if scores.get("steered") is not None:
            record["scores"] = {name: values[i] for name, values in scores.items() if values}
        records.append(record)
    return tuple(records)


def _scores(plan: Plan, texts: list[str], console: Any) -> list[float] | None:
    """Each text's adherence to the style, or None (with a note) where it cannot be scored."""
    from kvsl.styles import can_score, score

    if not can_score(plan):
        if console is not None:
            console.print(
                f"note: scoring is unavailable for style `{plan.style}` "
                "(not a built-in style, and the spec declares no `markers`)"
            )
        return None
    return [float(score(text, plan)) for text in texts]


def _status_line(plan: Plan, coefficients: Mapping[int, tuple[float, float]], prefix: str) -> str:
    settings = plan.generate
    mode = "sampling" if settings.sample else "greedy"
    return (
        f"steering `{plan.model.name}` with `{plan.style}`: {describe_steer(coefficients)}, "
        f"{mode}, up to {counted(settings.max_new_tokens, 'new token')}"
        + (f", answers start with {prefix!r}" if prefix else "")
    )


def describe_steer(coefficients: Mapping[int, tuple[float, float]]) -> str:
    """`layers 1..29, c_k=0, c_v=4`: the steered layers and their coefficients, in short.

    >>> describe_steer({1: (0.0, 4.0), 2: (0.0, 4.0)})
    'layers 1..2, c_k=0, c_v=4'
    """
    if not coefficients:
        return "no layers"
    layers = sorted(coefficients)
    values = set(coefficients.values())
    where = (
        f"layers {layers[0]}..{layers[-1]}"
        if layers == list(range(layers[0], layers[-1] + 1))
        else "layers " + ",".join(map(str, layers))
    )
    if len(values) == 1:
        ((c_k, c_v),) = values
        return f"{where}, c_k={c_k:g}, c_v={c_v:g}"
    return f"{where}, per-layer coefficients"
