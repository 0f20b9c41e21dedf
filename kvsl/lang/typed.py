"""Whether a frozen dataclass built from outside data holds the types it declares.

A plan read back from an artifact's manifest (`Plan.from_dict`) is JSON someone may have
edited, checksum and all: a coefficient of `NaN`, a `"six"`, a stop string `5`. The
dataclasses do not check their fields, so such a plan failed deep in generation with a
traceback, or steered with NaN. `type_problems` reads the declared field types instead of
repeating them in a hand-written validator, so a new field is checked as soon as it exists.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

__all__ = ["type_problems"]


def type_problems(obj: Any, where: str = "") -> list[str]:
    """Each field of dataclass `obj` (nested ones too) whose value is not of its declared
    type; a float must also be finite (an int stands for a float, a bool for neither).

    >>> from kvsl.lang.plan import LayerSpan
    >>> type_problems(LayerSpan(1, None)), type_problems(LayerSpan(1, "2"))
    ([], ["`stop` is '2', not int | None"])
    """
    problems: list[str] = []
    cls = type(obj)
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    hints = _HINTS[cls]
    for field in dataclasses.fields(obj):
        name = f"{where}.{field.name}" if where else field.name
        problems += _check(getattr(obj, field.name), hints[field.name], name)
    return problems


_HINTS: dict[type, dict[str, Any]] = {}  # each dataclass's resolved field types


def _check(value: Any, hint: Any, name: str) -> list[str]:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if any(not _check(value, option, name) for option in get_args(hint)):
            return []
    elif origin is tuple:
        if isinstance(value, tuple):
            item = get_args(hint)[0]  # tuple[X, ...]
            return [p for i, v in enumerate(value) for p in _check(v, item, f"{name}[{i}]")]
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # type: ignore[arg-type]
            return type_problems(value, name)
    elif _is_a(value, hint, origin):
        return []
    shown = repr(value)  # an edited manifest may hold a 4,000-digit number or a long text
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return [f"`{name}` is {shown}, not {_name(hint)}"]


def _is_a(value: Any, hint: Any, origin: Any) -> bool:
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and _finite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def _finite(value: int | float) -> bool:
    """A finite float, or an int a float can hold (`math.isfinite(10**400)` overflows)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _name(hint: Any) -> str:
    if isinstance(hint, type) and get_origin(hint) is None:
        return "a finite number" if hint is float else hint.__name__
    return str(hint).replace("typing.", "").replace("kvsl.lang.plan.", "")
