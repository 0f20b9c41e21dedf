"""Random derivations of `kvsl/lang/grammar.lark` itself, and token-level mutations of them
(a plain module: test packages have no __init__).

`derivations()` walks the grammar's own rules, as Lark compiles them (`lark_parser().rules`),
from `start`: at each nonterminal it draws one of the rule's expansions, and past
`max_depth` only the expansions that end soonest, so every drawn spec is finite. Terminals
are drawn from the grammar's own patterns (`st.from_regex`), biased towards what the
checker knows (block and key names, choices, paths of the fuzz workspace), so that a
derivation reaches beyond "unknown key". A new rule or terminal in the grammar is fuzzed
without a change here.

`mutants()` then breaks the token stream of a derivation: drop, duplicate or swap tokens,
and splice in what hostile input holds (unicode, huge numbers, NaN and infinities,
negative layers, deep nesting, very long strings, CRLF, a BOM, NUL, lone surrogates).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from hypothesis import strategies as st
from lark import Lark
from lark.grammar import NonTerminal, Rule, Terminal
from lark_oracle import lark_parser

from kvsl.lang.fmt import escape_string
from kvsl.lang.schema import BLOCK_KEYS, OVERRIDE_KEYS, STYLE_KEYS, STYLE_KINDS, KeySpec

BLOCKS = ("style", "base", *BLOCK_KEYS, "at")
KEYS = tuple(dict.fromkeys([*STYLE_KEYS, *(k for keys in BLOCK_KEYS.values() for k in keys)]))
CHOICES = tuple(
    dict.fromkeys(
        c for keys in (*BLOCK_KEYS.values(), OVERRIDE_KEYS) for s in keys.values() for c in s.choices
    )
)
# Names that mean something to the checker where a value goes: `all` layers, and the names
# Python's float() would take for numbers.
IDENTS = ("all", "nan", "NaN", "inf", "Infinity", "true", "none", *CHOICES)
PATHS = ("traces.jsonl", "questions.jsonl", "prompt.j2", "base.kvs", "adir", "missing.kvs", "")
NUMBERS = ("0", "1", "-1", "8", "-4", "0.5", "1e-3", "4.5e0", "1e309", "-1e309", "9" * 400)


@cache
def _grammar() -> tuple[dict[str, list[Rule]], dict[str, str]]:
    """The compiled rules by nonterminal name, and each terminal's pattern (as a regex)."""
    import re

    parser: Lark = lark_parser()
    rules: dict[str, list[Rule]] = {}
    for rule in parser.rules:
        rules.setdefault(rule.origin.name, []).append(rule)  # type: ignore[arg-type]
    patterns = {
        t.name: (t.pattern.value if t.pattern.type == "re" else re.escape(t.pattern.value))
        for t in parser.terminals
    }
    return rules, patterns


@cache
def _heights() -> dict[str, int]:
    """For each nonterminal, the least derivation depth that ends in terminals only."""
    rules, _ = _grammar()
    height: dict[str, int] = {}
    changed = True
    while changed:  # a fixed point: at most as many rounds as there are nonterminals
        changed = False
        for name, expansions in rules.items():
            for rule in expansions:
                parts = [s for s in rule.expansion if isinstance(s, NonTerminal)]
                if all(p.name in height for p in parts):
                    h = 1 + max((height[p.name] for p in parts), default=0)
                    if h < height.get(name, 1 << 30):
                        height[name] = h
                        changed = True
    return height


def _rule_height(rule: Rule) -> int:
    heights = _heights()
    return max((heights[s.name] for s in rule.expansion if isinstance(s, NonTerminal)), default=0)


def _key_spec(block: str | None, key: str | None) -> KeySpec | None:
    if key is None:
        return None
    if block in ("style", "base"):
        return STYLE_KEYS.get(key)
    if block == "at":
        return OVERRIDE_KEYS.get(key)
    return BLOCK_KEYS.get(block or "", {}).get(key)


# The expansion of `value` (and of a list's elements) that fits a key of each kind.
FITTING = {
    "int": "number",
    "float": "number",
    "choice": "ident",
    "string": "string",
    "strings": "list",
    "regexes": "list",
    "layers": "list",
}


@dataclass(frozen=True)
class Context:
    """Where a derivation is: the enclosing block's name and the key being assigned."""

    block: str | None = None
    key: str | None = None

    @property
    def spec(self) -> KeySpec | None:
        return _key_spec(self.block, self.key)


def _keys_of(block: str | None) -> tuple[str, ...]:
    if block is None:  # the top of a file
        return STYLE_KINDS
    if block in ("style", "base"):
        return (*STYLE_KEYS, *BLOCK_KEYS)  # a style holds keys and blocks
    if block == "at":
        return tuple(OVERRIDE_KEYS)
    return tuple(BLOCK_KEYS.get(block or "", {})) or KEYS


@st.composite
def terminal(draw: st.DrawFn, name: str, role: str, context: Context) -> str:
    """A token of terminal `name`: from its pattern, or from what the checker knows."""
    _, patterns = _grammar()
    if draw(st.integers(0, 4)) > 0:  # mostly what the checker knows, sometimes anything
        spec = context.spec
        if name == "NAME" and role == "key":
            return draw(st.sampled_from(_keys_of(context.block)))
        if name == "NAME" and role == "block":
            return draw(st.sampled_from(_keys_of(context.block) + BLOCKS))
        if name == "NAME" and spec is not None and spec.kind == "choice":
            return draw(st.sampled_from(spec.choices))
        if name == "NAME":
            return draw(st.sampled_from(IDENTS))
        if name == "NUMBER" and spec is not None and spec.kind in ("int", "float", "layers"):
            return str(draw(st.integers(1, 8)))
        if name == "NUMBER":
            return draw(st.sampled_from(NUMBERS))
        if name == "STRING" and spec is not None and spec.kind == "regexes":
            return escape_string(draw(st.sampled_from(["therefore", r"^\s*\d+\.", "(?i)first"])))
        if name == "STRING":
            return escape_string(draw(st.sampled_from(PATHS) | st.text(max_size=12)))
        if name == "LONG_STRING":
            body = draw(st.sampled_from(["{{ question }}", "{{ question }}\n{{ answer }}", "{% if %}"]))
            return f'"""{body}"""'
    return draw(st.from_regex(patterns[name], fullmatch=True).filter(lambda t: "\x00" not in t))


def _expansions(symbol: str, depth: int, max_depth: int, context: Context) -> list[Rule]:
    rules, _ = _grammar()
    expansions = rules[symbol]
    if depth >= max_depth:  # only the expansions that end soonest
        least = min(_rule_height(r) for r in expansions)
        return [r for r in expansions if _rule_height(r) == least]
    spec = context.spec
    if symbol in ("value", "_element") and spec is not None:
        fitting = [r for r in expansions if FITTING[spec.kind] in _names(r)]
        if spec.kind in ("layers", "strings", "regexes") and symbol == "_element":
            fitting = [r for r in expansions if {"range", "value"} & _names(r)]
        return fitting or expansions
    return expansions


def _names(rule: Rule) -> set[str]:
    return {s.name for s in rule.expansion}


@st.composite
def _derive(
    draw: st.DrawFn, symbol: str, depth: int, max_depth: int, out: list[str], context: Context
) -> None:
    choices = _expansions(symbol, depth, max_depth, context)
    fitting = draw(st.integers(0, 4)) > 0  # mostly a value that fits its key
    rule = draw(st.sampled_from(choices if fitting else _grammar()[0][symbol]))
    inner = context
    for part in rule.expansion:
        if isinstance(part, Terminal):
            # a NAME before `=` is a key; one that opens a block is a block name
            role = {"assignment": "key", "block": "block"}.get(symbol, "value")
            token = draw(terminal(part.name, role, inner))
            out.append(token)
            if role == "key" and part.name == "NAME":
                inner = Context(context.block, token)
            elif role == "block" and part.name == "NAME":
                inner = Context(token)
        else:
            draw(_derive(part.name, depth + 1, max_depth, out, inner))


SEPARATORS = (" ", " ", " ", "\n", "\n  ", "\t", "\r\n", "  # note\n", "\n\n", "\f")


@st.composite
def token_streams(draw: st.DrawFn, max_depth: int = 9) -> list[str]:
    """The tokens of one derivation of `start` (never separated: see `layout`)."""
    tokens: list[str] = []
    inside = draw(st.booleans())  # half of them inside a style with a contrast block
    draw(_derive("start", 0, max_depth, tokens, Context("style" if inside else None)))
    if inside:
        name = escape_string(draw(st.sampled_from(["s", "step-by-step", "A.b_c-9"])))
        contrast = ["traces", "=", '"traces.jsonl"', "pairs", "=", "8", "shots", "=", "2"]
        prelude = ["description", "=", '"d"', "contrast", "{", *contrast, "}"]
        tokens = ["style", name, "{", *prelude, *tokens, "}"]
    return tokens


@st.composite
def layout(draw: st.DrawFn, tokens: list[str]) -> str:
    """The tokens joined by drawn whitespace and comments (at least one space each)."""
    parts: list[str] = []
    for token in tokens:
        parts.append(token)
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts)


@st.composite
def derivations(draw: st.DrawFn) -> str:
    """A spec the grammar derives (it parses; the checker may still refuse it)."""
    return draw(layout(draw(token_streams())))


# --- mutations of the token stream -------------------------------------------------------

SPLICES = (
    "é",
    "💡",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\x00",
    "\ud800",  # a lone surrogate: written with surrogatepass, it is not UTF-8 on disk
    "\r",
    "\r\n",
    "nan",
    "-inf",
    "inf",
    "NaN",
    "1e999",
    "-1e999",
    "9" * 5000,
    "-" + "9" * 30,
    "0." + "0" * 400 + "1",
    "[-99..-1]",
    "[-1..-99]",
    "[-0..]",
    "[0..-1]",
    "[" * 3000 + "]" * 3000,
    "x {" * 300 + "}" * 300,
    '"' + "a" * 200_000 + '"',
    '"""' + "{{ question }}" * 5000 + '"""',
    '"\\u00"',
    '"\\ud800"',
    '"\\x00"',
    "#" + "c" * 5000,
    "４",
    "=",
    "..",
    ",",
)


@st.composite
def mutants(draw: st.DrawFn) -> str:
    """A derivation whose token stream was broken 1-4 times, then laid out."""
    tokens = draw(token_streams(max_depth=7))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "duplicate", "swap", "splice", "glue"]))
        if not tokens:
            tokens = [draw(st.sampled_from(SPLICES))]
            continue
        i = draw(st.integers(0, len(tokens) - 1))
        if kind == "drop":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "splice":
            tokens.insert(i, draw(st.sampled_from(SPLICES)))
        else:  # two tokens without the space between them
            if i + 1 < len(tokens):
                tokens[i : i + 2] = [tokens[i] + tokens[i + 1]]
    text = draw(layout(tokens))
    if draw(st.integers(0, 4)) == 0:
        text = draw(st.sampled_from(["\ufeff", "\ufeff\ufeff", "\n", "\x00"])) + text
    if draw(st.integers(0, 4)) == 0:
        text = text.replace("\n", "\r\n")
    if draw(st.integers(0, 6)) == 0:
        text = text.replace("\n", "\r")  # old Mac line ends: one long line to Python's "\n"
    return text
