"""Value conversion: one syntax-tree value, checked against its key's `KeySpec`.

`convert` turns a literal into the Python value the plan needs (a string, a number, a
choice, a tuple of strings, a tuple of `LayerSpan`s) or reports why it cannot, with the
key's type (KVS107), range (KVS109), choices (KVS108), finiteness (KVS111), layer
lists (KVS112), markers (KVS126, KVS141, KVS142) and file names (KVS140).

>>> from kvsl.lang.parser import parse_text
>>> from kvsl.lang.schema import BLOCK_KEYS
>>> spec, _ = parse_text('style "s" { steer { layers = [1.., -2] } }', "s.kvs")
>>> node = spec.items[0].items[0].items[0].value
>>> convert(BLOCK_KEYS["steer"]["layers"], "layers", node, [])
(LayerSpan(start=1, stop=None), LayerSpan(start=-2, stop=-2))
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from kvsl.lang.checked import CheckedValue
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.phrasing import error, joined, shortened, suggestion
from kvsl.lang.plan import LayerSpan
from kvsl.lang.schema import PATH_KEYS, KeySpec
from kvsl.lang.syntax import Ident, ListValue, Number, Range, String, Value, value_kind


def convert(
    spec: KeySpec, key: str, node: Value, diagnostics: list[Diagnostic]
) -> CheckedValue | None:
    """Check one value against its KeySpec: the Python value, or None (reported)."""
    wrong = _type_error(spec, key, node, diagnostics)
    if spec.kind == "string":
        return _string(key, node, diagnostics, wrong)
    if spec.kind in ("int", "float"):
        return _number(spec, key, node, diagnostics, wrong)
    if spec.kind == "choice":
        return _choice(spec, key, node, diagnostics, wrong)
    if spec.kind in ("strings", "regexes"):
        return _strings(spec, node, diagnostics, wrong)
    if spec.kind == "layers":
        return _layers(key, node, diagnostics, wrong)
    raise AssertionError(spec.kind)


def convert_layers(
    key: str, node: Value, diagnostics: list[Diagnostic]
) -> tuple[LayerSpan, ...] | None:
    """`convert` for a layer selection (the header of `at [layers] { ... }`), typed."""
    spec = KeySpec("layers", "")
    return _layers(key, node, diagnostics, _type_error(spec, key, node, diagnostics))


# Each converter below reports through `wrong()` when the value has the wrong type.
Wrong = Callable[[], None]


def _type_error(spec: KeySpec, key: str, node: Value, diagnostics: list[Diagnostic]) -> Wrong:
    def wrong() -> None:
        diagnostics.append(
            error(
                "KVS107",
                f"`{key}` expects {_expected(spec)}, found {value_kind(node)}",
                node.span,
                help=_type_help(spec, node),
            )
        )

    return wrong


def _string(key: str, node: Value, diagnostics: list[Diagnostic], wrong: Wrong) -> str | None:
    if not isinstance(node, String):
        wrong()
        return None
    if key in PATH_KEYS and "\0" in node.value and not node.triple:
        diagnostics.append(
            error(
                "KVS140",
                f"`{key}` names a file, and a file name cannot contain a NUL character",
                node.span,
                help="remove the `\\0` from the path",
            )
        )
        return None
    return node.value


def _number(
    spec: KeySpec, key: str, node: Value, diagnostics: list[Diagnostic], wrong: Wrong
) -> int | float | None:
    if not isinstance(node, Number) or (spec.kind == "int" and not isinstance(node.value, int)):
        wrong()
        return None
    if _out_of_range(node):
        return None  # the parser reported it (KVS020); its value is a stand-in
    number: int | float = node.value if spec.kind == "int" else float(node.value)
    if spec.kind == "float" and not math.isfinite(number):
        diagnostics.append(
            error(
                "KVS111",
                f"`{key}` is not finite: `{node.text}` overflows a 64-bit float",
                node.span,
                help="coefficients and other numbers must be finite",
            )
        )
        return None
    if not _in_range(spec, number):
        diagnostics.append(
            error("KVS109", f"`{key}` must be {_range_text(spec)}, found `{node.text}`", node.span)
        )
        return None
    return number


def _choice(
    spec: KeySpec, key: str, node: Value, diagnostics: list[Diagnostic], wrong: Wrong
) -> str | None:
    word = (
        node.name if isinstance(node, Ident) else node.value if isinstance(node, String) else None
    )
    if word is None:
        wrong()
        return None
    if word not in spec.choices:
        help = suggestion(word, spec.choices) or f"choose {joined(spec.choices)}"
        diagnostics.append(error("KVS108", f"`{key}` cannot be `{word}`", node.span, help=help))
        return None
    return word


def _strings(
    spec: KeySpec, node: Value, diagnostics: list[Diagnostic], wrong: Wrong
) -> tuple[str, ...] | None:
    items = (
        (node,) if isinstance(node, String) else node.items if isinstance(node, ListValue) else None
    )
    if items is None or not all(isinstance(item, String) for item in items):
        wrong()
        return None
    strings: list[String] = [item for item in items if isinstance(item, String)]
    if spec.kind == "regexes" and not _markers_ok(strings, diagnostics):
        return None
    empty = [item for item in strings if not item.value]
    for item in empty:  # `"" in text` holds for every text: decoding would stop at once
        diagnostics.append(
            error(
                "KVS024",
                "empty stop string: every generation would end after its first token",
                item.span,
                help='remove it; a stop string is the text that ends a generation ("\\n\\n")',
            )
        )
    return None if empty else tuple(item.value for item in strings)


def _markers_ok(strings: list[String], diagnostics: list[Diagnostic]) -> bool:
    """Each marker through `validate_marker`'s rules (KVS126, KVS141, KVS142)."""
    from kvsl.lang.markers import marker_problem

    good = True
    for item in strings:
        problem = marker_problem(item.value)
        if problem is None:
            continue
        good = False
        code, reason = problem
        message, help = {
            "KVS126": (
                f"invalid regular expression: {reason.removeprefix('invalid regex: ')}",
                'markers are Python regular expressions; in a `"..."` string a backslash '
                "is written `\\\\`",
            ),
            "KVS141": (
                f"marker `{shortened(item.value)}` {reason}",
                "a marker must require some text: `^\\s*\\d+\\.` rather than `\\d*`",
            ),
            "KVS142": (
                f"marker is too complex: {reason}",
                "a marker is a short phrase or line pattern (limits: docs/language.md)",
            ),
        }[code]
        diagnostics.append(error(code, message, item.span, help=help))
    return good


def _out_of_range(node: Number) -> bool:
    """Whether the parser refused this integer literal (KVS020) and clamped its value."""
    from kvsl.lang.parser import MAX_INTEGER

    return (
        isinstance(node.value, int)
        and abs(node.value) == MAX_INTEGER
        and node.text.lstrip("+-").lstrip("0") != str(MAX_INTEGER)
    )


def _layers(
    key: str, node: Value, diagnostics: list[Diagnostic], wrong: Wrong
) -> tuple[LayerSpan, ...] | None:
    """A layer selection: `all`, one integer, or a list of integers and ranges."""
    if isinstance(node, Ident):
        if node.name == "all":
            return (LayerSpan(0, None),)
        wrong()
        return None
    if isinstance(node, Number):
        if not isinstance(node.value, int):
            wrong()
            return None
        if _out_of_range(node):
            return None  # reported by the parser (KVS020)
        return (LayerSpan(node.value, node.value),)
    if not isinstance(node, ListValue):
        wrong()
        return None
    numbers = [n for i in node.items for n in ((i.start, i.stop) if isinstance(i, Range) else (i,))]
    if any(isinstance(n, Number) and _out_of_range(n) for n in numbers):
        return None  # reported by the parser (KVS020)
    if not node.items:
        diagnostics.append(
            error("KVS112", f"`{key}` selects no layers", node.span, help="write `[1..]` or `all`")
        )
        return None
    spans = [_layer_span(item, diagnostics) for item in node.items]
    good = [span for span in spans if span is not None]
    return tuple(good) if len(good) == len(spans) else None


def _layer_span(
    item: String | Number | Ident | ListValue | Range, diagnostics: list[Diagnostic]
) -> LayerSpan | None:
    """One item of a layer list, or None (reported)."""
    if isinstance(item, Number) and isinstance(item.value, int):
        return LayerSpan(item.value, item.value)
    if (
        isinstance(item, Range)
        and isinstance(item.start.value, int)
        and (item.stop is None or isinstance(item.stop.value, int))
    ):
        start = item.start.value
        stop = None if item.stop is None else item.stop.value
        assert isinstance(start, int)
        if stop is not None and (start < 0) == (stop < 0) and start > stop:
            diagnostics.append(
                error(
                    "KVS112",
                    f"empty layer range `{start}..{stop}`",
                    item.span,
                    help=f"ranges are inclusive and count up: write `{stop}..{start}`",
                )
            )
            return None
        return LayerSpan(start, stop if isinstance(stop, int) else None)
    diagnostics.append(
        error(
            "KVS107",
            "a layer is an integer or a range like `1..4`, `1..` or `-4..-1`",
            item.span,
        )
    )
    return None


def _expected(spec: KeySpec) -> str:
    if spec.kind == "choice":
        return joined(spec.choices)
    return {
        "string": "a string",
        "int": "an integer",
        "float": "a number",
        "layers": "a layer list like `[1..]` or `all`",
        "strings": "a list of strings",
        "regexes": "a list of regular expressions (strings)",
    }[spec.kind]


def _in_range(spec: KeySpec, number: float) -> bool:
    low = spec.minimum
    if low is not None and (number < low or (spec.minimum_exclusive and number == low)):
        return False
    return not (spec.maximum is not None and number > spec.maximum)


def _range_text(spec: KeySpec) -> str:
    low, high = spec.minimum, spec.maximum

    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    if low is not None and high is not None:
        left = "(" if spec.minimum_exclusive else "["
        return f"in {left}{fmt(low)}, {fmt(high)}]"
    if low is not None:
        return f"greater than {fmt(low)}" if spec.minimum_exclusive else f"at least {fmt(low)}"
    assert high is not None  # `_in_range` refuses nothing without a bound
    return f"at most {fmt(high)}"


def _type_help(spec: KeySpec, node: Value) -> str | None:
    if spec.kind == "int" and isinstance(node, String) and re.fullmatch(r"-?\d+", node.value):
        return f"write the number without quotes: `{node.value}`"
    if spec.kind == "string" and isinstance(node, Ident | Number):
        text = node.name if isinstance(node, Ident) else node.text
        return f'write it in quotes: `"{text}"`'
    if spec.kind == "int" and isinstance(node, Number):
        return "write a whole number"
    return None
