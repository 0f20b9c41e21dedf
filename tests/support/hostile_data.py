"""Hypothesis strategies for the data files and messages a user hands kvsl (not specs).

`json_values` draws any JSON document (deep nesting, huge and non-finite numbers, lone
surrogates, control characters and the non-ASCII digits `isdigit` accepts), `texts` the
strings inside them, `mutated` byte-level damage of a valid file (cut, duplicated, swapped,
flipped and inserted bytes, a BOM, CRLF) and `lines_file` a JSON-lines file mixing records
with junk. The spec fuzzers' strategies are in tests/lang/spec_strategies.py.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Characters that have broken readers: digits `int` refuses or misreads, separators
# `str.splitlines` honours but JSON lines do not, controls, a BOM, surrogates, RTL marks.
AWKWARD = "²³¹٣۴०๕\u2028\u2029\x85\x00\x07\x1b\r\t\ufeff\ud800\udfff\u202e\u0301 "


def texts(max_size: int = 30) -> st.SearchStrategy[str]:
    """Short strings, often made of the awkward characters."""
    return st.one_of(
        st.text(max_size=max_size),
        st.text(st.sampled_from(AWKWARD + "aB1 .\n-#"), max_size=max_size),
        st.sampled_from(["", " ", "A", "1", "-1", "0", "١", "²", "#### 1,234", "9" * 5000,
                         "nan", "inf", "1e400", "true", "null", "A: x\nB: y"]),
    )  # fmt: skip


def numbers() -> st.SearchStrategy[int | float]:
    return st.one_of(
        st.integers(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([0, -1, 1, 2**31, 2**63, 10**400, 1e308, -0.0]),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (`json.dumps` writes NaN and Infinity, as a careless writer does)."""
    scalars = st.one_of(st.none(), st.booleans(), numbers(), texts())
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(texts(10), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def deep(depth: int) -> str:
    """A JSON array nested `depth` times (past the decoder's recursion limit, about a thousand)."""
    return "[" * depth + "]" * depth


@st.composite
def records(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """An object with some of `fields` (each drawn from its strategy, or any JSON value)
    and sometimes an unknown key."""
    out: dict[str, Any] = {}
    for name, good in fields.items():
        choice = draw(st.integers(0, 9))
        if choice < 7:
            out[name] = draw(good)
        elif choice < 9:
            out[name] = draw(json_values(6))
    if draw(st.booleans()):
        out[draw(texts(8))] = draw(json_values(4))
    return out


def dumps(value: Any) -> str:
    """One JSON line as a writer might produce it (ASCII-escaped or not, spaced or not)."""
    return json.dumps(value, ensure_ascii=False)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with 1-4 byte-level edits."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        size = len(out)
        kind = draw(st.sampled_from(["cut", "duplicate", "swap", "flip", "insert", "bom", "crlf"]))
        a = draw(st.integers(0, size))
        b = draw(st.integers(a, min(size, a + 40)))
        if kind == "cut":
            del out[a:b]
        elif kind == "duplicate":
            out[b:b] = out[a:b]
        elif kind == "swap" and b < size:
            out[a:b], out[b : b + (b - a)] = out[b : b + (b - a)], out[a:b]
        elif kind == "flip" and a < size:
            out[a] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            out[a:a] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "bom":
            out[0:0] = b"\xef\xbb\xbf"
        elif kind == "crlf":
            out = bytearray(bytes(out).replace(b"\n", b"\r\n"))
    return bytes(out)


@st.composite
def lines_file(
    draw: st.DrawFn, record: st.SearchStrategy[Any], *, max_lines: int = 6
) -> bytes:
    """A JSON-lines file: records from `record`, other JSON, junk lines, blank lines."""
    junk = st.one_of(
        st.binary(max_size=20),
        st.sampled_from([b"{", b"}", b"[]", b"null", b"\xff\xfe", deep(3000).encode(),
                         b'{"a": ' + b"7" * 5000 + b"}", b'"\\ud800"', b"NaN", b"\x00"]),
    )  # fmt: skip
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, max_lines))):
        kind = draw(st.integers(0, 9))
        if kind < 6:
            parts.append(dumps(draw(record)).encode("utf-8", "surrogatepass"))
        elif kind < 8:
            parts.append(dumps(draw(json_values(6))).encode("utf-8", "surrogatepass"))
        elif kind < 9:
            parts.append(draw(junk))
        else:
            parts.append(b"   ")
    data = b"\n".join(parts) + (b"\n" if draw(st.booleans()) else b"")
    return draw(mutated(data)) if draw(st.integers(0, 3)) == 0 else data


def assert_coded(diagnostics: Any, path: str | None = None, data: bytes | None = None) -> None:
    """Every diagnostic has a registered code, a message and a location; one in `path`
    points at a line the file has (`data`: its bytes)."""
    from kvsl.lang.codes import CODES
    from kvsl.lang.render import render_diagnostics

    assert diagnostics, "an error without a diagnostic"
    for d in diagnostics:
        assert d.code in CODES, f"{d.code} is not registered"
        assert d.message and d.span.line >= 1 and d.span.column >= 1, d
        if path is not None and data is not None and d.span.path == path:
            assert d.span.line <= data.count(b"\n") + 1, d
    for format in ("human", "json", "github", "sarif"):
        render_diagnostics(list(diagnostics), format=format)
