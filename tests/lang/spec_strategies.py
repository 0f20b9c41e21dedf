"""Hypothesis strategies for `.kvs` specs: valid ones from the grammar and the key schema,
then targeted breakages (a plain module: test packages have no __init__).

`valid_specs()` draws a style block whose every key comes from `kvsl.lang.schema`'s
tables with a value of the kind and range that key accepts (numbers, choices, strings
with escapes, layer lists with open and negative ranges, markers, inline Jinja2
templates), laid out with random spacing, line breaks and comments. Such a spec must
check without errors. `broken_specs()` takes one and breaks it the ways hostile input
does: huge numbers, deep nesting, special files as paths, control characters,
unbalanced brackets, non-ASCII digits, truncation, hostile templates and markers.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from kvsl.lang.fmt import escape_string
from kvsl.lang.schema import BLOCK_KEYS, KeySpec

TRACE = '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}\n'


@dataclass(frozen=True)
class Workspace:
    """A directory the generated specs live in, with the files their paths name."""

    root: Path
    fifo: str | None  # a named pipe (None where the system has none)


def make_workspace() -> Workspace:
    # in memory where there is a tmpfs: thousands of small writes, cheap there
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="kvsl-grammar-fuzz-", dir=shm))
    (root / "traces.jsonl").write_text(TRACE * 8, encoding="utf-8")
    (root / "questions.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n', encoding="utf-8")
    (root / "prompt.j2").write_text("Solve: {{ question }}\n", encoding="utf-8")
    (root / "base.kvs").write_text('base "b" {\n  contrast { pairs = 8 }\n}\n', encoding="utf-8")
    (root / "adir").mkdir()
    fifo = None
    if hasattr(os, "mkfifo"):
        fifo = str(root / "fifo")
        os.mkfifo(fifo)
    return Workspace(root, fifo)


# --- valid values, by key kind -----------------------------------------------------------

SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters='"\\\n\r', min_codepoint=32
    ),
    max_size=20,
)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


def _number_text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _int_in(spec: KeySpec) -> st.SearchStrategy[int]:
    low = int(spec.minimum) if spec.minimum is not None else -(2**40)
    return st.integers(low, low + 10_000)


def _float_in(spec: KeySpec) -> st.SearchStrategy[str]:
    low = spec.minimum if spec.minimum is not None else -50.0
    high = spec.maximum if spec.maximum is not None else 50.0
    value = st.floats(low, high, exclude_min=spec.minimum_exclusive, allow_nan=False)
    return st.one_of(
        value.map(lambda x: f"{x:.4f}" if x != 0 or not spec.minimum_exclusive else "0.5"),
        st.integers(int(max(low, 0)) + (1 if spec.minimum_exclusive else 0), int(high)).map(str),
    ).filter(lambda text: not spec.minimum_exclusive or float(text) > (spec.minimum or 0))


@st.composite
def layer_list(draw: st.DrawFn) -> str:
    """Layers inside 1..29 of the embedded model: ints, `a..b`, `a..`, `-4..-1`."""
    items = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["int", "range", "open", "negative"]))
        if kind == "int":
            items.append(str(draw(st.integers(1, 29))))
        elif kind == "range":
            a = draw(st.integers(1, 29))
            items.append(f"{a}..{draw(st.integers(a, 29))}")
        elif kind == "open":
            items.append(f"{draw(st.integers(1, 29))}..")
        else:
            a = draw(st.integers(-29, -1))
            items.append(f"{a}..{draw(st.integers(a, -1))}")
    return "[" + ", ".join(items) + draw(st.sampled_from(["", ","])) + "]"


VARIABLES = ("question", "answer", "style", "description")


@st.composite
def template_text(draw: st.DrawFn, depth: int = 0) -> str:
    """An inline Jinja2 template (always uses `question`)."""
    parts = ["{{ question }}"]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "var", "filter", "if", "for"]))
        if kind == "text":
            parts.append(draw(SAFE_TEXT).replace("{", "(").replace("}", ")").replace("#", ""))
        elif kind == "var":
            parts.append("{{ " + draw(st.sampled_from(VARIABLES)) + " }}")
        elif kind == "filter":
            f = draw(st.sampled_from(["upper", "lower", "trim", "length", "title"]))
            parts.append("{{ " + draw(st.sampled_from(VARIABLES)) + "|" + f + " }}")
        elif kind == "if" and depth < 3:
            inner = draw(template_text(depth + 1))
            parts.append("{% if domain %}" + inner + "{% else %}x{% endif %}")
        elif kind == "for" and depth < 1:
            parts.append("{% for c in choices %}{{ c.label }}) {{ c.text }}\n{% endfor %}")
    draw(st.randoms()).shuffle(parts)
    return "".join(parts).replace('"""', "")


def string_literal(value_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A `"..."` literal with escapes (`\\n`, `\\u00e9`, `\\"`) for any text."""
    return value_strategy.map(escape_string)


MARKERS = st.sampled_from([r"(?i)\bfirst\b", r"^\s*\d+\.", "therefore", r"Step \d+", "[A-D]\\)"])


SET_BY_BUILDER = ("traces", "template", "questions", "extends", "model", "base_url", "shots")


def _value_strategy(spec: KeySpec) -> st.SearchStrategy[str]:
    """Valid value text for a key of this kind and range (built once per key)."""
    kind = spec.kind
    if kind == "int":
        return _int_in(spec).map(str)
    if kind == "float":
        return _float_in(spec)
    if kind == "choice":
        return st.sampled_from(spec.choices).flatmap(lambda c: st.sampled_from([c, f'"{c}"']))
    if kind == "string":
        return STRING_LITERAL
    if kind == "strings":  # stop strings: never empty (KVS024)
        return st.lists(DESCRIPTION, min_size=1, max_size=3).map(
            lambda xs: "[" + ", ".join(xs) + "]"
        )
    if kind == "layers":
        return st.one_of(layer_list(), st.just("all"))
    if kind == "regexes":
        return st.lists(MARKERS, min_size=1, max_size=3).map(
            lambda ms: "[" + ", ".join(escape_string(m) for m in ms) + "]"
        )
    raise AssertionError(kind)


STRING_LITERAL = string_literal(ANY_TEXT)
DESCRIPTION = string_literal(ANY_TEXT.filter(bool))
VALUES: dict[tuple[str, str], st.SearchStrategy[str]] = {
    (block, key): _value_strategy(spec)
    for block, keys in BLOCK_KEYS.items()
    for key, spec in keys.items()
    if key not in SET_BY_BUILDER
}
MARKER_LIST = _value_strategy(KeySpec("regexes", ""))


# --- layout ----------------------------------------------------------------------------


@st.composite
def spacing(draw: st.DrawFn) -> tuple[str, str]:
    """(space between tokens, separator between items): one line or many, odd indents."""
    space = draw(st.sampled_from([" ", "  ", "\t", " "]))
    newline = draw(st.sampled_from(["\n", "\n  ", "\n\n", " ", "\r\n", "  # note\n"]))
    return space, newline


@st.composite
def valid_specs(draw: st.DrawFn) -> str:
    """A spec that checks without errors (warnings allowed)."""
    sp, nl = draw(spacing())
    items: list[str] = [f"description{sp}={sp}{draw(DESCRIPTION)}"]
    pairs = draw(st.integers(1, 60))
    contrast = [
        'traces = "traces.jsonl"',
        f"pairs = {pairs}",
        f"shots = {draw(st.integers(0, pairs - 1))}",
    ]
    blocks: dict[str, list[str]] = {"contrast": contrast}
    for block, keys in BLOCK_KEYS.items():
        if block != "contrast" and draw(st.booleans()):
            blocks[block] = []
        if block not in blocks:
            continue
        for key in keys:
            if block == "contrast" and key in ("traces", "pairs", "shots"):
                continue
            if draw(st.integers(0, 2)) == 0:
                continue
            if (block, key) in VALUES:
                blocks[block].append(f"{key}{sp}={sp}{draw(VALUES[block, key])}")
    if "teacher" in blocks:
        template = draw(
            st.one_of(st.just('"prompt.j2"'), template_text().map(lambda t: f'"""{t}"""'))
        )
        blocks["teacher"] += [
            'model = "gpt-4o"',
            f"template = {template}",
            'traces = "traces.jsonl"',
        ]
        if draw(st.booleans()):
            blocks["teacher"].append('questions = "questions.jsonl"')
            if not any(item.startswith("format") for item in blocks["teacher"]):
                blocks["teacher"].append(f"format = {draw(st.sampled_from(['gsm8k', 'plain']))}")
    sampling = ("temperature", "top_p", "top_k")  # only with `mode = sample` (else KVS125)
    if any(item.startswith(sampling) for item in blocks.get("generate", [])):
        blocks["generate"] = [i for i in blocks["generate"] if not i.startswith("mode")]
        blocks["generate"].append("mode = sample")
    # Keys that constrain each other: `min_new_tokens` may not exceed `max_new_tokens`
    # (256 unless set; else KVS135), so a drawn minimum brings a maximum that fits it.
    generate = blocks.get("generate", [])
    least = [int(i.split("=")[1]) for i in generate if i.startswith("min_new_tokens")]
    most = [int(i.split("=")[1]) for i in generate if i.startswith("max_new_tokens")]
    if least and least[0] > (most[0] if most else 256):
        blocks["generate"] = [i for i in generate if not i.startswith("max_new_tokens")]
        blocks["generate"].append(f"max_new_tokens = {least[0]}")
    if "steer" in blocks and draw(st.booleans()):
        value = draw(st.integers(-8, 8))
        blocks["steer"].append(f"at{sp}{draw(layer_list())}{sp}{{{sp}value = {value}{sp}}}")
    if draw(st.booleans()):
        items.append("markers = " + draw(MARKER_LIST))
    if draw(st.booleans()):
        items.append('extends = "base.kvs"')
    order = list(blocks.items())
    draw(st.randoms()).shuffle(order)
    for block, lines in order:
        body = nl.join(f"  {line}" for line in lines)
        items.append(f"{block}{sp}{{{nl}{body}{nl}}}")
    draw(st.randoms()).shuffle(items)
    name = draw(st.sampled_from(["s", "step-by-step", "A.b_c-9", "9" * 60])) + str(
        draw(st.integers(0, 99))
    )
    comment = draw(st.sampled_from(["", "# a spec\n", "# ünïcödé 💡\n"]))
    return f'{comment}style{sp}"{name}"{sp}{{{nl}' + nl.join(items) + f"{nl}}}\n"


# --- breakages -------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+)?(?![\w.])")
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')

HOSTILE_TEMPLATES = [
    "{{ question }}{{ 'a' * 10**10 }}",
    "{{ question }}{{ 'a'|center(10**10) }}",
    "{{ question }}{% for i in range(10**9) %}{% endfor %}",
    "{{ question|nosuchfilter }}",
    "{% include 'x.j2' %}",
    "{% import 'x.j2' as x %}{{ question }}",
    "{{ " + "(" * 2000 + "question" + ")" * 2000 + " }}",
    "{% if question %}" * 300 + "{% endif %}" * 300,
    "{{ question }}{{ 10**10**10 }}",
    "{{ question }}{{ 'a' * 9e999**10 }}",  # an infinite constant in Jinja's generated code
    "{{ question }}{{ " + "9" * 4301 + " }}",  # past Python's int-from-string limit
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{{ question }}{{ (['a' * 90000] * 90000)|join }}",
    "{{ question",
    "{% for %}",
]
HOSTILE_MARKERS = ["a{4294967296}", "(" * 2000 + ")" * 2000, "a*", "(", "[z-a]", "(?P<x>a)(?P=y)"]


def special_paths(workspace: Workspace) -> list[str]:
    paths = ["/dev/zero", "/dev/null", "/etc/passwd", "a\0b", "adir", "/", "missing.kvs", "~", ""]
    if workspace.fifo:
        paths.append(workspace.fifo)
    return paths


@st.composite
def broken_specs(draw: st.DrawFn, workspace: Workspace) -> str:
    """A valid spec broken by 1-3 targeted breakages."""
    text = draw(valid_specs())
    for _ in range(draw(st.integers(1, 3))):
        text = draw(breakage(text, workspace))
    return text


def _insert(text: str, item: str) -> str:
    """`item` as the first item of the style block (whatever the layout)."""
    at = text.find("{") + 1
    return text[:at] + "\n" + item + "\n" + text[at:] if at else text


def _replace_match(draw: st.DrawFn, pattern: re.Pattern[str], text: str, new: str) -> str:
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    match = draw(st.sampled_from(matches))
    return text[: match.start()] + new + text[match.end() :]


@st.composite
def breakage(draw: st.DrawFn, text: str, workspace: Workspace) -> str:
    kind = draw(
        st.sampled_from(
            [
                "huge-number",
                "huge-range",
                "deep-nesting",
                "special-path",
                "control-chars",
                "unbalanced",
                "unicode-digit",
                "truncate",
                "template",
                "marker",
                "raw-bytes",
            ]
        )
    )
    if kind == "huge-number":
        digits = draw(st.sampled_from([19, 20, 309, 400, 4301, 6000]))
        number = draw(st.sampled_from(["9", "1"])) * digits
        if draw(st.booleans()):
            number += ".5" if draw(st.booleans()) else "e999"
        return _replace_match(draw, _NUMBER, text, draw(st.sampled_from(["", "-"])) + number)
    if kind == "huge-range":
        bound = draw(st.sampled_from(["100000000", str(2**63), str(2**63 - 1), "9" * 400]))
        ranges = [f"[1..{bound}]", f"[-{bound}..-1]", f"[{bound}..]", f"[0..{bound}, 1..]"]
        layers = draw(st.sampled_from(ranges))
        return _insert(text, f"  steer {{ layers = {layers} }}")
    if kind == "deep-nesting":
        depth = draw(st.sampled_from([31, 33, 200, 5000]))
        nested = "[" * depth + "1" + "]" * depth
        if draw(st.booleans()):
            nested = "x { " * depth + "}" * depth
            return _insert(text, f"  {nested}")
        return _replace_match(draw, _NUMBER, text, nested)
    if kind == "special-path":
        path = escape_string(draw(st.sampled_from(special_paths(workspace))))
        key = draw(st.sampled_from(["traces", "extends", "template", "questions", "model"]))
        if key == "traces":
            return re.sub(r'traces = "[^"]*"', lambda _: f"traces = {path}", text, count=1)
        if key in ("template", "questions"):
            if "teacher" in text:
                pattern = re.compile(r'(template|questions) = ("[^"\n]*"|"""[^"]*""")')
                return pattern.sub(lambda _: f"{key} = {path}", text, count=1)
            block = f'  teacher {{ model = "m"  traces = "traces.jsonl"  {key} = {path} }}'
            return _insert(text, f"{block}")
        return _insert(text, f"  {key} = {path}")
    if kind == "control-chars":
        junk = draw(
            st.text(
                alphabet=st.sampled_from("\x1b\x07\r\x08\x00\x7f\u202e\x9b"), min_size=1, max_size=6
            )
        )
        if draw(st.booleans()):  # escaped in a string value
            return _replace_match(draw, _STRING, text, escape_string("x" + junk + "[31m"))
        at = draw(st.integers(0, len(text)))
        return text[:at] + junk + text[at:]  # raw, anywhere
    if kind == "unbalanced":
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            brackets = [i for i, ch in enumerate(text) if ch in "{}[]"]
            if brackets:
                i = draw(st.sampled_from(brackets))
                return text[:i] + text[i + 1 :]
        return text[:at] + draw(st.sampled_from(["{", "}", "[", "]", '"', '"""', ".."])) + text[at:]
    if kind == "unicode-digit":
        digits = [i for i, ch in enumerate(text) if ch.isdigit()]
        if not digits:
            return text
        i = draw(st.sampled_from(digits))
        return text[:i] + draw(st.sampled_from(["４", "٣", "۴", "𝟜", "²", "⑤"])) + text[i + 1 :]
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "template":
        template = draw(st.sampled_from(HOSTILE_TEMPLATES))
        block = f'  teacher {{\n    model = "m"\n    traces = "traces.jsonl"\n    template = """{template}"""\n  }}'
        if "teacher" in text:
            return text
        return _insert(text, f"{block}")
    if kind == "marker":
        marker = escape_string(draw(st.sampled_from(HOSTILE_MARKERS)))
        return _insert(text, f"  markers = [{marker}]")
    # raw-bytes: a few arbitrary characters
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.text(max_size=8)) + text[at:]
