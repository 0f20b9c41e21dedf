"""Hyperparameter choice and sweeps on a dev split (never on the test set).

A sweep evaluates one method per value of a swept parameter (`--sweep value=0,2,4`) on
the dev split and keeps a `SweepPoint` per value; `choose_caa` searches CAA's (layer,
multiplier) grid the same way. Every point is a method in the results cache, so a sweep
resumes like an eval. `kvsl.eval.pipeline.run_sweep` puts the steps together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from kvsl.eval.results_cache import ResultsCache
from kvsl.eval.runner import Progress, evaluate
from kvsl.eval.stats import Accuracy
from kvsl.formats.questions import Example
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import GenerationSettings, LayerSpan

SWEEP_PARAMETERS = ("value", "key", "layers", "shots", "pairs", "caa-layer", "caa-multiplier")


def parse_sweep(text: str) -> tuple[str, tuple[float, ...]]:
    """`"value=0,2,4"` → `("value", (0.0, 2.0, 4.0))`; KVS612 when malformed.

    >>> parse_sweep("shots=0,1,2")
    ('shots', (0.0, 1.0, 2.0))
    """
    name, _, values = text.partition("=")
    name = name.strip().lower().replace("_", "-")
    if name == "multiplier":
        name = "caa-multiplier"
    try:
        numbers = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        numbers = ()
    if not all(math.isfinite(v) for v in numbers):  # `value=nan`, `shots=inf`
        numbers = ()
    if name not in SWEEP_PARAMETERS or not numbers:
        raise KvslError.usage(
            "KVS612",
            f"cannot read the sweep `{text}`",
            help=f"write `--sweep NAME=V1,V2,...` with NAME one of {', '.join(SWEEP_PARAMETERS)}",
        )
    if name in ("layers", "shots", "pairs", "caa-layer") and any(v != int(v) for v in numbers):
        raise KvslError.usage("KVS612", f"sweep `{name}` takes whole numbers, got `{values}`")
    return name, numbers


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


@dataclass(frozen=True)
class SweepBase:
    """The settings a sweep leaves as they are while it varies one of them."""

    layers: tuple[LayerSpan, ...] | None  # cache steering overrides
    key: float | None
    value: float | None
    caa_layer: int | None
    caa_multiplier: float | None
    cot: bool  # sweep `cache+cot` instead of `cache`


def swept_method(ctx: Any, name: str, v: float, base: SweepBase) -> Any:
    """The method that evaluates `name = v` (a `SWEEP_PARAMETERS` name), all else as `base`."""
    from kvsl.eval.methods import caa_method, cache_method
    from kvsl.eval.session import caa_vectors, coefficients, vectors_for_contrast

    kind = "cache+cot" if base.cot else "cache"
    if name in ("value", "key", "layers"):
        coeffs = coefficients(
            ctx,
            layers=(LayerSpan(int(v), None),) if name == "layers" else base.layers,
            key=v if name == "key" else base.key,
            value=v if name == "value" else base.value,
        )
        return cache_method(ctx.vectors, coeffs, cot=base.cot, name=f"{kind} {name}={v:g}")
    if name in ("shots", "pairs"):
        vectors = vectors_for_contrast(ctx, **{name: int(v)})
        coeffs = coefficients(ctx, layers=base.layers, key=base.key, value=base.value)
        return cache_method(vectors, coeffs, cot=base.cot, name=f"{kind} {name}={v:g}")
    caa = caa_vectors(ctx)
    layer = int(v) if name == "caa-layer" else base.caa_layer
    if layer is None:
        layer = ctx.num_layers // 2
    mult = v if name == "caa-multiplier" else base.caa_multiplier
    mult = 1.0 if mult is None else mult
    return caa_method(caa, layer, mult, name=f"caa@{layer}x{mult:g}")


def chance_rate(examples: Sequence[Example]) -> float | None:
    """1 / choices when every example has the same number of choices, else None."""
    choices = {len(e.choices) for e in examples}
    return 1 / choices.pop() if len(choices) == 1 and 0 not in choices else None


def best_values(sweeps: dict[str, list[SweepPoint]]) -> dict[str, float]:
    """Per swept parameter, the value of its best point (ties: the smaller |value|)."""
    return {name: best_point(points).value for name, points in sweeps.items()}
