"""Per-run changes to a plan's steering and generation: `--layers`, `--key`, `--value`, ...

Shared by `kvsl run` and `kvsl serve` (where a request's `kvsl` field carries the same
settings), so both read a layer selection and apply an override the same way. Front end:
no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kvsl.base.counts import decimal_count
from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError
from kvsl.lang.plan import LayerSpan, Plan
from kvsl.lang.source import Span


def _usage(code: str, message: str, help: str, span: Span = COMMAND_LINE) -> KvslError:
    return KvslError.one(code, message, span, help=help, exit_code=ExitCode.USAGE)


# ASCII digits only (`\d` also matches "٣", which `int` reads as 3): as in a spec.
_LAYER_ITEM = re.compile(r"^(?P<start>-?[0-9]+)?(?P<range>\.\.)?(?P<stop>-?[0-9]+)?$")


def _index(text: str) -> int:
    """A layer index as written; one of more than 18 digits reads as `OVER` (outside every
    model, reported as such), never converted (`int` refuses 4,300 digits)."""
    count = decimal_count(text.lstrip("-"))
    assert count is not None  # the pattern matched ASCII digits
    return -count if text.startswith("-") else count


def parse_layers(text: str) -> tuple[LayerSpan, ...]:
    """Parse a `--layers` value: indices and inclusive ranges, as in a spec's `layers = [...]`.

    >>> parse_layers("1..,-3")
    (LayerSpan(start=1, stop=None), LayerSpan(start=-3, stop=-3))
    >>> parse_layers("[0, 2..4]")
    (LayerSpan(start=0, stop=0), LayerSpan(start=2, stop=4))
    >>> parse_layers("all")
    (LayerSpan(start=0, stop=None),)
    """
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    if body.strip() == "all":
        return (LayerSpan(0, None),)
    spans: list[LayerSpan] = []
    for raw in body.split(","):
        item = raw.strip().replace(" ", "")
        match = _LAYER_ITEM.match(item)
        if (
            match is None
            or (match["start"] is None and match["stop"] is None)
            or (match["range"] is None and match["stop"] is not None)  # "1-3": two numbers
        ):
            raise _usage(
                "KVS450",
                f"invalid layer selection `{text}`: cannot read `{raw.strip()}`",
                "write indices and ranges separated by commas: `3`, `1..8`, `1..`, `..4`, "
                "`-4..-1`, or `all`",
            )
        start = _index(match["start"]) if match["start"] is not None else 0
        if match["range"] is None:
            spans.append(LayerSpan(start, start))
        else:
            spans.append(
                LayerSpan(start, _index(match["stop"]) if match["stop"] is not None else None)
            )
    return tuple(spans)


def with_overrides(
    plan: Plan,
    *,
    layers: tuple[LayerSpan, ...] | None = None,
    key: float | None = None,
    value: float | None = None,
    max_new_tokens: int | None = None,
    sample: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    controls: Mapping[str, Any] | None = None,
) -> Plan:
    """The plan with command-line overrides applied (no hashes change: vectors are reused).

    `layers` replaces the steered layers (the spec's per-range `at` coefficients still apply
    inside them); `key` / `value` set c_k / c_v on every steered layer, replacing per-range ones;
    `controls` sets decoding controls by `GenerationSettings` field name.
    """
    steer = plan.steer
    if layers is not None:
        steer = replace(steer, layers=layers)
    if key is not None:
        steer = replace(
            steer, key=key, overrides=tuple(replace(o, key=None) for o in steer.overrides)
        )
    if value is not None:
        steer = replace(
            steer, value=value, overrides=tuple(replace(o, value=None) for o in steer.overrides)
        )
    generate = plan.generate
    changes: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "sample": sample,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        **(controls or {}),
    }
    generate = replace(generate, **{k: v for k, v in changes.items() if v is not None})
    return replace(plan, steer=steer, generate=generate)
