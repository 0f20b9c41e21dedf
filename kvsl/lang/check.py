"""The checker: syntax tree → every diagnostic in one pass, plus the resolved values.

Three steps, none of which raises for bad input:

1. `analyze` reads one file's tree against `SCHEMA`: unknown, duplicate and misplaced
   keys, types and per-value ranges. It produces a `Decl` of typed `Field`s, each
   remembering its span and the directory it was written in (relative paths resolve
   against the file that wrote them, also through `extends`).
2. `Session.resolve` follows `extends` (cycle detection with labels) and merges a base's
   fields under the spec's own.
3. `check_resolved` checks the merged spec as a whole: required keys, `shots < pairs`,
   files that must exist, templates, the model and its layers, suspicious values.

>>> from kvsl.lang.parser import parse_text
>>> spec, _ = parse_text('style "s" { contrast { pairz = 4 } }', "s.kvs")
>>> decl, diagnostics = analyze(spec)
>>> [(d.code, d.message) for d in diagnostics]
[('KVS104', 'unknown key `pairz` in `contrast`')]
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from functools import lru_cache
from typing import Any, Literal

from kvsl.lang.checked import INVALID as _INVALID
from kvsl.lang.checked import resolve_path as _resolve_path
from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.plan import EMBEDDED_MODELS, GenerationSettings, LayerSpan
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.syntax import Assignment, Block, Ident, ListValue, Number, Range, Spec, String

# Number of transformer layers of each embedded model, so that layer indices can be
# checked without loading it (SmolLM2-135M: 30 decoder layers).
EMBEDDED_MODEL_LAYERS: dict[str, int] = {"smollm2-135m": 30}

Kind = Literal["string", "int", "float", "choice", "layers", "strings", "regexes"]


@dataclass(frozen=True)
class KeySpec:
    """What one key accepts. Bounds apply to numbers; `choices` to `choice` keys."""

    kind: Kind
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    minimum_exclusive: bool = False
    maximum: float | None = None


STYLE_KEYS: dict[str, KeySpec] = {
    "description": KeySpec("string", "one sentence: what the style's reasoning looks like"),
    "extends": KeySpec(
        "string", "another spec (path relative to this one) whose values are defaults"
    ),
    "model": KeySpec(
        "string", "embedded short name, Hugging Face id, local directory or .gguf file"
    ),
    "markers": KeySpec("regexes", "regular expressions that mark the style in a generation"),
}

BLOCK_KEYS: dict[str, dict[str, KeySpec]] = {
    "teacher": {
        "model": KeySpec("string", "the teacher model's name at the endpoint"),
        "template": KeySpec("string", 'Jinja2 file relative to the spec, or an inline """block"""'),
        "traces": KeySpec("string", "the JSONL trace file the teacher fills"),
        "base_url": KeySpec("string", "an OpenAI-compatible endpoint (default: OpenAI's)"),
        "questions": KeySpec("string", "question source for `kvsl teach` (JSONL)"),
        "format": KeySpec(
            "choice", "how questions are read", ("gsm8k", "arc", "csqa", "piqa", "plain")
        ),
        "temperature": KeySpec("float", "teacher sampling temperature", minimum=0),
        "max_tokens": KeySpec("int", "longest teacher answer in tokens", minimum=1),
        "concurrency": KeySpec("int", "requests in flight", minimum=1),
    },
    "contrast": {
        "traces": KeySpec("string", "JSONL trace file (default: the teacher's)"),
        "pairs": KeySpec("int", "N, the number of contrast pairs", minimum=1),
        "shots": KeySpec(
            "int", "k, demos per prompt (<= N - 1; with `questions`, <= the traces)", minimum=0
        ),
        "select": KeySpec("choice", "how demos are picked", ("random", "nearest")),
        "seed": KeySpec("int", "seed for demo selection", minimum=0),
        "system_prompt": KeySpec("string", "system prompt (default: the chat template's own)"),
        "questions": KeySpec("string", "query pool: the N target questions come from here"),
        "format": KeySpec(
            "choice", "how the query pool is read", ("gsm8k", "arc", "csqa", "piqa", "plain")
        ),
    },
    "extract": {
        "position": KeySpec("choice", "which token is read", ("last_token",)),
        "offset_token": KeySpec("string", "token appended to every prompt (paper: newline)"),
        "prefix": KeySpec("string", "starts the answer in extraction and generation"),
        "precision": KeySpec("choice", "extraction precision", ("fp32", "bf16")),
        "batch_size": KeySpec("int", "prompts per forward pass", minimum=1),
    },
    "steer": {
        "layers": KeySpec("layers", "steered layers: [1..], [0, 2, 5..7], [-4..-1], all"),
        "key": KeySpec("float", "c_k, the key coefficient (keep 0: keys carry RoPE)"),
        "value": KeySpec("float", "c_v, the value coefficient"),
    },
    "generate": {
        "max_new_tokens": KeySpec("int", "longest generation in tokens", minimum=1),
        "mode": KeySpec("choice", "greedy or sampling", ("greedy", "sample")),
        "temperature": KeySpec("float", "sampling temperature", minimum=0),
        "top_p": KeySpec(
            "float", "nucleus sampling mass", minimum=0, minimum_exclusive=True, maximum=1
        ),
        "seed": KeySpec("int", "sampling seed", minimum=0),
        "stop": KeySpec("strings", "stop strings"),
        # Decoding controls: transformers' own logits processors (GenerationConfig fields).
        "repetition_penalty": KeySpec(
            "float", "> 1 discourages repeating tokens (1 = off)", minimum=0, minimum_exclusive=True
        ),
        "no_repeat_ngram_size": KeySpec("int", "forbid repeating any n-gram (0 = off)", minimum=0),
        "min_new_tokens": KeySpec("int", "no end of text before this many tokens", minimum=0),
        "top_k": KeySpec("int", "sample from the k likeliest tokens (0 = off)", minimum=0),
    },
}

OVERRIDE_KEYS: dict[str, KeySpec] = {
    "key": BLOCK_KEYS["steer"]["key"],
    "value": BLOCK_KEYS["steer"]["value"],
}

TOP = "style"  # the pseudo block name of a style's own keys
# Keys whose string names a file (or, for `model`, may): what the operating system
# refuses in a file name is refused here, before any path function sees it.
PATH_KEYS = frozenset({"extends", "model", "template", "traces", "questions"})
STYLE_KINDS = ("style", "base")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Field:
    """A checked value with where it came from."""

    value: Any
    span: Span  # the value as written
    key_span: Span
    directory: str  # directory of the file it was written in (relative paths start here)


@dataclass(frozen=True)
class OverrideDecl:
    layers: tuple[LayerSpan, ...]
    layers_span: Span
    key: Field | None
    value: Field | None


@dataclass(frozen=True)
class Decl:
    """One style (or base) declaration, checked locally or merged through `extends`."""

    path: str
    kind: str  # "style" or "base"
    name: str | None
    name_span: Span
    values: dict[str, dict[str, Field]]  # "style" → its own keys; block name → keys
    blocks: dict[str, Span]  # block kind → span of its name
    overrides: tuple[OverrideDecl, ...] | None  # None: no `at` blocks written
    extends: Field | None
    incomplete: bool = False  # a base failed to load: skip missing-key checks

    def get(self, block: str, key: str) -> Field | None:
        return self.values.get(block, {}).get(key)


@dataclass(frozen=True)
class Resolved:
    """A merged declaration after the whole-spec checks, ready for lowering."""

    decl: Decl
    template_source: str | None = None
    template_path: str | None = None


def _err(
    code: str, message: str, span: Span, help: str | None = None, labels: tuple[Label, ...] = ()
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, labels=labels, help=help)


def _warn(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, span, help=help)


def _suggest(word: str, candidates: list[str]) -> str | None:
    return _suggest_cached(word, tuple(candidates))


@lru_cache(maxsize=1024)  # a file with the same unknown key 30,000 times costs one lookup
def _suggest_cached(word: str, candidates: tuple[str, ...]) -> str | None:
    close = get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _joined(words: list[str] | tuple[str, ...]) -> str:
    quoted = [f"`{w}`" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# --- step 1: one file ------------------------------------------------------------------


def analyze(spec: Spec) -> tuple[Decl | None, list[Diagnostic]]:
    """Check one file's tree locally; returns its declaration (None when it has none)."""
    diagnostics: list[Diagnostic] = []
    directory = os.path.dirname(os.path.abspath(spec.path))
    if not spec.items:
        diagnostics.append(
            _err(
                "KVS006",
                "empty spec: no `style` block",
                Span.whole_file(spec.path),
                help='a spec declares one style: `style "my-style" { description = "..." }`',
            )
        )
        return None, diagnostics
    styles: list[Block] = []
    for item in spec.items:
        if isinstance(item, Block) and item.kind in STYLE_KINDS:
            if styles:
                diagnostics.append(
                    _err(
                        "KVS101",
                        "more than one style in one file",
                        item.kind_span,
                        help="put each style in its own `.kvs` file",
                        labels=(Label(styles[0].kind_span, "first style declared here"),),
                    )
                )
            styles.append(item)
            continue
        what = f"`{item.key} = ...`" if isinstance(item, Assignment) else f"block `{item.kind}`"
        span = item.key_span if isinstance(item, Assignment) else item.kind_span
        diagnostics.append(
            _err(
                "KVS100",
                f"expected a `style` block at the top level, found {what}",
                span,
                help='settings go inside `style "name" { ... }`',
            )
        )
    if not styles:
        return None, diagnostics
    block = styles[0]
    name = _style_name(block, diagnostics)
    values: dict[str, dict[str, Field]] = {TOP: {}}
    blocks: dict[str, Span] = {}
    overrides: list[OverrideDecl] = []
    saw_at = False
    for item in block.items:
        if isinstance(item, Assignment):
            if item.key in STYLE_KEYS:
                _assign(values[TOP], STYLE_KEYS[item.key], item, directory, diagnostics, None)
            elif item.key in BLOCK_KEYS:
                diagnostics.append(
                    _err(
                        "KVS107",
                        f"`{item.key}` is a block, not a value",
                        item.span,
                        help=f"write `{item.key} {{ ... }}`",
                    )
                )
            else:
                _unknown(
                    item.key, item.key_span, None, list(STYLE_KEYS) + list(BLOCK_KEYS), diagnostics
                )
            continue
        if item.kind in BLOCK_KEYS:
            if item.kind in blocks:
                diagnostics.append(
                    _err(
                        "KVS105",
                        f"duplicate block `{item.kind}`",
                        item.kind_span,
                        help="merge the two blocks into one",
                        labels=(Label(blocks[item.kind], "first written here"),),
                    )
                )
                continue
            blocks[item.kind] = item.kind_span
            if item.header is not None:
                diagnostics.append(
                    _err(
                        "KVS107",
                        f"`{item.kind}` takes no header",
                        item.header.span,
                        help=f"write `{item.kind} {{ ... }}`",
                    )
                )
            own = values.setdefault(item.kind, {})
            for inner in item.items:
                if isinstance(inner, Assignment):
                    keys = BLOCK_KEYS[item.kind]
                    if inner.key in keys:
                        _assign(own, keys[inner.key], inner, directory, diagnostics, item.kind)
                    else:
                        _unknown(inner.key, inner.key_span, item.kind, list(keys), diagnostics)
                elif inner.kind == "at" and item.kind == "steer":
                    saw_at = True
                    override = _override(inner, directory, diagnostics)
                    if override is not None:
                        overrides.append(override)
                elif inner.kind in BLOCK_KEYS[item.kind]:
                    diagnostics.append(
                        _err(
                            "KVS107",
                            f"`{inner.kind}` takes a value, not a block",
                            inner.kind_span,
                            help=f"write `{inner.kind} = ...`",
                        )
                    )
                else:
                    help = (
                        "`at [layers] { ... }` blocks belong in `steer`"
                        if inner.kind == "at"
                        else None
                    )
                    _unknown(
                        inner.kind,
                        inner.kind_span,
                        item.kind,
                        list(BLOCK_KEYS[item.kind]),
                        diagnostics,
                        help=help,
                        noun="block",
                    )
        elif item.kind in STYLE_KEYS:
            diagnostics.append(
                _err(
                    "KVS107",
                    f"`{item.kind}` takes a value, not a block",
                    item.kind_span,
                    help=f"write `{item.kind} = ...`",
                )
            )
        else:
            help = "`at [layers] { ... }` blocks belong in `steer`" if item.kind == "at" else None
            _unknown(
                item.kind,
                item.kind_span,
                None,
                list(BLOCK_KEYS),
                diagnostics,
                help=help,
                noun="block",
            )
    decl = Decl(
        path=spec.path,
        kind=block.kind,
        name=name,
        name_span=block.header.span if block.header is not None else block.kind_span,
        values=values,
        blocks=blocks,
        overrides=tuple(overrides) if saw_at else None,
        extends=values[TOP].get("extends"),
    )
    return decl, diagnostics


def _style_name(block: Block, diagnostics: list[Diagnostic]) -> str | None:
    header = block.header
    if not isinstance(header, String) or header.triple:
        diagnostics.append(
            _err(
                "KVS102",
                f"`{block.kind}` needs a name in quotes",
                header.span if header is not None else block.kind_span,
                help=f'write `{block.kind} "my-style" {{`',
            )
        )
        return None
    if not _NAME.fullmatch(header.value):
        diagnostics.append(
            _err(
                "KVS103",
                f"invalid style name `{header.value}`",
                header.span,
                help="use letters, digits, `-`, `_` and `.`, starting with a letter or digit "
                "(at most 64 characters)",
            )
        )
    return header.value


def _unknown(
    key: str,
    span: Span,
    block: str | None,
    candidates: list[str],
    diagnostics: list[Diagnostic],
    help: str | None = None,
    noun: str = "key",
) -> None:
    where = f" in `{block}`" if block else ""
    if help is None:
        help = _suggest(key, candidates)
        if help is None:
            help = f"known keys{where}: {_joined(sorted(candidates))}"
    diagnostics.append(_err("KVS104", f"unknown {noun} `{key}`{where}", span, help=help))


def _assign(
    target: dict[str, Field],
    spec: KeySpec,
    item: Assignment,
    directory: str,
    diagnostics: list[Diagnostic],
    block: str | None,
) -> None:
    if item.key in target:
        diagnostics.append(
            _err(
                "KVS105",
                f"duplicate key `{item.key}`",
                item.key_span,
                help="remove one of the two",
                labels=(Label(target[item.key].key_span, "first set here"),),
            )
        )
        return
    ok, value = convert(spec, item.key, item.value, diagnostics)
    # A key with a bad value still counts as present (no "missing key" on top of it);
    # the sentinel keeps it out of cross-checks and lowering.
    target[item.key] = Field(value if ok else _INVALID, item.value.span, item.key_span, directory)


def _override(block: Block, directory: str, diagnostics: list[Diagnostic]) -> OverrideDecl | None:
    header = block.header
    layers: tuple[LayerSpan, ...] | None = None
    if not isinstance(header, ListValue):
        diagnostics.append(
            _err(
                "KVS107",
                "`at` needs a list of layers",
                header.span if header is not None else block.kind_span,
                help="write `at [1..4] { value = 4 }`",
            )
        )
    else:
        ok, value = convert(BLOCK_KEYS["steer"]["layers"], "at", header, diagnostics)
        layers = value if ok else None
    found: dict[str, Field] = {}
    for inner in block.items:
        if isinstance(inner, Assignment) and inner.key in OVERRIDE_KEYS:
            _assign(found, OVERRIDE_KEYS[inner.key], inner, directory, diagnostics, "at")
        else:
            key = inner.key if isinstance(inner, Assignment) else inner.kind
            span = inner.key_span if isinstance(inner, Assignment) else inner.kind_span
            _unknown(key, span, "at", list(OVERRIDE_KEYS), diagnostics)
    if layers is None or header is None:
        return None
    key_field = found.get("key")
    value_field = found.get("value")
    return OverrideDecl(
        layers,
        header.span,
        key_field if key_field is not None and key_field.value is not _INVALID else None,
        value_field if value_field is not None and value_field.value is not _INVALID else None,
    )


def _expected(spec: KeySpec) -> str:
    if spec.kind == "choice":
        return _joined(spec.choices)
    return {
        "string": "a string",
        "int": "an integer",
        "float": "a number",
        "layers": "a layer list like `[1..]` or `all`",
        "strings": "a list of strings",
        "regexes": "a list of regular expressions (strings)",
    }[spec.kind]


def convert(spec: KeySpec, key: str, node: Any, diagnostics: list[Diagnostic]) -> tuple[bool, Any]:
    """Check one value against its KeySpec; (True, python value) or (False, None)."""
    from kvsl.lang.syntax import value_kind

    def wrong() -> tuple[bool, Any]:
        diagnostics.append(
            _err(
                "KVS107",
                f"`{key}` expects {_expected(spec)}, found {value_kind(node)}",
                node.span,
                help=_type_help(spec, node),
            )
        )
        return False, None

    kind = spec.kind
    if kind == "string":
        if not isinstance(node, String):
            return wrong()
        if key in PATH_KEYS and "\0" in node.value and not node.triple:
            diagnostics.append(
                _err(
                    "KVS140",
                    f"`{key}` names a file, and a file name cannot contain a NUL character",
                    node.span,
                    help="remove the `\\0` from the path",
                )
            )
            return False, None
        return True, node.value
    if kind in ("int", "float"):
        if not isinstance(node, Number) or (kind == "int" and not isinstance(node.value, int)):
            return wrong()
        if _out_of_range(node):
            return False, None  # the parser reported it (KVS020); its value is a stand-in
        number: int | float = node.value if kind == "int" else float(node.value)
        if kind == "float" and not math.isfinite(number):
            diagnostics.append(
                _err(
                    "KVS111",
                    f"`{key}` is not finite: `{node.text}` overflows a 64-bit float",
                    node.span,
                    help="coefficients and other numbers must be finite",
                )
            )
            return False, None
        if not _in_range(spec, number):
            diagnostics.append(
                _err(
                    "KVS109",
                    f"`{key}` must be {_range_text(spec)}, found `{node.text}`",
                    node.span,
                )
            )
            return False, None
        return True, number
    if kind == "choice":
        word = (
            node.name
            if isinstance(node, Ident)
            else node.value
            if isinstance(node, String)
            else None
        )
        if word is None:
            return wrong()
        if word not in spec.choices:
            help = _suggest(word, list(spec.choices)) or f"choose {_joined(spec.choices)}"
            diagnostics.append(_err("KVS108", f"`{key}` cannot be `{word}`", node.span, help=help))
            return False, None
        return True, word
    if kind in ("strings", "regexes"):
        items = (
            (node,)
            if isinstance(node, String)
            else node.items
            if isinstance(node, ListValue)
            else None
        )
        if items is None or not all(isinstance(item, String) for item in items):
            return wrong()
        strings: list[String] = [item for item in items if isinstance(item, String)]
        if kind == "regexes" and not _markers_ok(strings, diagnostics):
            return False, None
        return True, tuple(item.value for item in strings)
    if kind == "layers":
        return _layers(key, node, diagnostics, wrong)
    raise AssertionError(kind)


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
                f"marker `{_shorten(item.value)}` {reason}",
                "a marker must require some text: `^\\s*\\d+\\.` rather than `\\d*`",
            ),
            "KVS142": (
                f"marker is too complex: {reason}",
                "a marker is a short phrase or line pattern (limits: docs/language.md)",
            ),
        }[code]
        diagnostics.append(_err(code, message, item.span, help=help))
    return good


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _out_of_range(node: Number) -> bool:
    """Whether the parser refused this integer literal (KVS020) and clamped its value."""
    from kvsl.lang.parser import MAX_INTEGER

    return (
        isinstance(node.value, int)
        and abs(node.value) == MAX_INTEGER
        and node.text.lstrip("+-").lstrip("0") != str(MAX_INTEGER)
    )


def _layers(key: str, node: Any, diagnostics: list[Diagnostic], wrong: Any) -> tuple[bool, Any]:
    if isinstance(node, Ident):
        if node.name == "all":
            return True, (LayerSpan(0, None),)
        return wrong()
    if isinstance(node, Number):
        if not isinstance(node.value, int):
            return wrong()
        if _out_of_range(node):
            return False, None  # reported by the parser (KVS020)
        return True, (LayerSpan(node.value, node.value),)
    if not isinstance(node, ListValue):
        return wrong()
    numbers = [n for i in node.items for n in ((i.start, i.stop) if isinstance(i, Range) else (i,))]
    if any(isinstance(n, Number) and _out_of_range(n) for n in numbers):
        return False, None  # reported by the parser (KVS020)
    if not node.items:
        diagnostics.append(
            _err("KVS112", f"`{key}` selects no layers", node.span, help="write `[1..]` or `all`")
        )
        return False, None
    spans: list[LayerSpan] = []
    good = True
    for item in node.items:
        if isinstance(item, Number) and isinstance(item.value, int):
            spans.append(LayerSpan(item.value, item.value))
        elif (
            isinstance(item, Range)
            and isinstance(item.start.value, int)
            and (item.stop is None or isinstance(item.stop.value, int))
        ):
            start = item.start.value
            stop = None if item.stop is None else item.stop.value
            assert isinstance(start, int)
            if stop is not None and (start < 0) == (stop < 0) and start > stop:
                good = False
                diagnostics.append(
                    _err(
                        "KVS112",
                        f"empty layer range `{start}..{stop}`",
                        item.span,
                        help=f"ranges are inclusive and count up: write `{stop}..{start}`",
                    )
                )
            spans.append(LayerSpan(start, stop if isinstance(stop, int) else None))
        else:
            good = False
            diagnostics.append(
                _err(
                    "KVS107",
                    "a layer is an integer or a range like `1..4`, `1..` or `-4..-1`",
                    item.span,
                )
            )
    return (True, tuple(spans)) if good else (False, None)


def _in_range(spec: KeySpec, number: float) -> bool:
    low = spec.minimum
    if low is not None and (number < low or (spec.minimum_exclusive and number == low)):
        return False
    return not (spec.maximum is not None and number > spec.maximum)


def _range_text(spec: KeySpec) -> str:
    low, high = spec.minimum, spec.maximum
    fmt = lambda x: str(int(x)) if float(x).is_integer() else str(x)  # noqa: E731
    if low is not None and high is not None:
        left = "(" if spec.minimum_exclusive else "["
        return f"in {left}{fmt(low)}, {fmt(high)}]"
    if low is not None:
        return f"greater than {fmt(low)}" if spec.minimum_exclusive else f"at least {fmt(low)}"
    return f"at most {fmt(high)}"  # type: ignore[arg-type]


def _type_help(spec: KeySpec, node: Any) -> str | None:
    if spec.kind == "int" and isinstance(node, String) and re.fullmatch(r"-?\d+", node.value):
        return f"write the number without quotes: `{node.value}`"
    if spec.kind == "string" and isinstance(node, Ident | Number):
        text = node.name if isinstance(node, Ident) else node.text
        return f'write it in quotes: `"{text}"`'
    if spec.kind == "int" and isinstance(node, Number):
        return "write a whole number"
    return None


# --- step 2: extends -------------------------------------------------------------------


@dataclass
class Session:
    """One run of the checker: parsed files are cached, so a shared base is read once."""

    local: dict[str, tuple[Decl | None, list[Diagnostic], SourceFile | None]] = field(
        default_factory=dict
    )

    def analyze_file(self, path: str) -> tuple[Decl | None, list[Diagnostic]]:
        key = os.path.realpath(path)
        if key not in self.local:
            from kvsl.lang.parser import load_source, parse_source

            source, diagnostics = load_source(path)
            decl = None
            if source is not None:
                spec, diagnostics = parse_source(source)
                if spec is not None:
                    decl, more = analyze(spec)
                    diagnostics = diagnostics + more
                else:  # every error in one pass: the lines the syntax errors left alone
                    diagnostics = diagnostics + meaning_despite_syntax(source, diagnostics)
            self.local[key] = (decl, diagnostics, source)
        decl, diagnostics, _ = self.local[key]
        return decl, list(diagnostics)

    def source(self, path: str) -> SourceFile | None:
        entry = self.local.get(os.path.realpath(path))
        return entry[2] if entry else None

    def resolve(
        self, path: str, chain: tuple[tuple[str, Field], ...] = ()
    ) -> tuple[Decl | None, list[Diagnostic]]:
        """The declaration in `path` merged over its `extends` chain."""
        decl, diagnostics = self.analyze_file(path)
        if decl is None or decl.extends is None or decl.extends.value is _INVALID:
            return decl, diagnostics
        extends = decl.extends
        target = _resolve_path(extends.value, extends.directory)
        real = os.path.realpath(target)
        seen = [*(p for p, _ in chain), os.path.realpath(path)]
        if real in seen:
            links = [*(f for _, f in chain), extends][seen.index(real) :]
            names = [os.path.basename(p) for p in seen[seen.index(real) :]] + [
                os.path.basename(real)
            ]
            diagnostics.append(
                _err(
                    "KVS118",
                    "`extends` cycle: " + " → ".join(names),
                    links[0].span,
                    labels=tuple(Label(f.span, "which extends this") for f in links[1:]),
                    help="a spec cannot extend itself, directly or through others",
                )
            )
            return replace(decl, incomplete=True), diagnostics
        problem = _extends_problem(target, len(chain))
        if problem is not None:
            code, reason, help = problem
            diagnostics.append(
                _err(
                    code,
                    f"extended spec `{_shorten(extends.value)}` {reason}",
                    extends.span,
                    help=help or f"the path is relative to this spec: {_shown(target)}",
                )
            )
            return replace(decl, incomplete=True), diagnostics
        base, more = self.resolve(_shown(target), (*chain, (os.path.realpath(path), extends)))
        diagnostics.extend(more)
        if base is None:
            return replace(decl, incomplete=True), diagnostics
        return _merge(base, decl), diagnostics


# A base of a base of a base is already rare; a chain this long is a mistake, and
# following it further would only spend the stack.
MAX_EXTENDS_DEPTH = 16


def _extends_problem(target: str, depth: int) -> tuple[str, str, str | None] | None:
    """(code, reason, help) when `target` cannot be followed as an `extends`, else None.

    Only `.kvs` files are read: anything else (`/etc/passwd`) would be parsed and its
    lines quoted as syntax errors into a CI log.
    """
    from kvsl.lang.files import regular_file_problem

    if depth + 2 > MAX_EXTENDS_DEPTH:
        return (
            "KVS143",
            f"would make the `extends` chain longer than {MAX_EXTENDS_DEPTH} specs",
            f"a chain of `extends` may be at most {MAX_EXTENDS_DEPTH} specs long: "
            "merge some of its bases",
        )
    problem = regular_file_problem(target)
    if problem is not None:
        return "KVS117", problem.reason, None
    if not target.endswith(".kvs"):
        return "KVS117", "is not a `.kvs` spec file", "`extends` names another spec file"
    return None


def _merge(base: Decl, decl: Decl) -> Decl:
    values = {name: dict(keys) for name, keys in base.values.items() if name != TOP}
    values[TOP] = {k: v for k, v in base.values.get(TOP, {}).items() if k != "extends"}
    for name, keys in decl.values.items():
        values.setdefault(name, {}).update(keys)
    return replace(
        decl,
        values=values,
        blocks={**base.blocks, **decl.blocks},
        overrides=decl.overrides if decl.overrides is not None else base.overrides,
        incomplete=decl.incomplete or base.incomplete,
    )


def _shown(path: str) -> str:
    """A path as shown in messages: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith(os.pardir) else relative


# --- step 3: the whole spec ------------------------------------------------------------


def check_resolved(decl: Decl, session: Session) -> tuple[Resolved, list[Diagnostic]]:
    """Whole-spec checks on a merged declaration."""
    diagnostics: list[Diagnostic] = []
    value = _value_getter(decl)

    if decl.kind == "style" and not decl.incomplete:
        _require(decl, diagnostics)

    _check_contrast_counts(decl, diagnostics)

    teacher = "teacher" in decl.blocks
    traces = decl.get("contrast", "traces") or decl.get("teacher", "traces")
    if value(traces) is not None:
        assert traces is not None
        from kvsl.lang.files import regular_file_problem

        path = _resolve_path(traces.value, traces.directory)
        problem = regular_file_problem(path)
        if problem is not None and problem.kind != "missing":
            diagnostics.append(
                _err("KVS115", f"trace file `{traces.value}` {problem.reason}", traces.span)
            )
        elif problem is not None:
            if teacher:
                diagnostics.append(
                    _warn(
                        "KVS116",
                        f"trace file `{traces.value}` does not exist yet",
                        traces.span,
                        help="`kvsl teach SPEC` creates it",
                    )
                )
            else:
                diagnostics.append(
                    _err(
                        "KVS115",
                        f"trace file `{traces.value}` does not exist",
                        traces.span,
                        help=f"the path is relative to the spec: {_shown(path)}; add a `teacher` "
                        "block to let `kvsl teach` create it",
                    )
                )

    questions = decl.get("teacher", "questions")
    if value(questions) is not None:
        assert questions is not None
        from kvsl.lang.files import regular_file_problem

        path = _resolve_path(questions.value, questions.directory)
        problem = regular_file_problem(path)
        if problem is not None:
            diagnostics.append(
                _err(
                    "KVS114",
                    f"question file `{questions.value}` {problem.reason}",
                    questions.span,
                    help=f"the path is relative to the spec: {_shown(path)}",
                )
            )

    base_url = decl.get("teacher", "base_url")
    if value(base_url) is not None and not re.match(r"https?://\S+$", base_url.value):  # type: ignore[union-attr]
        assert base_url is not None
        diagnostics.append(
            _err(
                "KVS108",
                f"`base_url` cannot be `{base_url.value}`",
                base_url.span,
                help="write an http(s) URL such as `http://127.0.0.1:8000/v1`",
            )
        )

    template_source, template_path = _check_template(decl, session, diagnostics)
    _check_model(decl, diagnostics)
    _check_steer(decl, diagnostics)
    _check_generate(decl, diagnostics)
    return Resolved(decl, template_source, template_path), diagnostics


def _check_generate(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """Settings of `generate` that are legal one by one but mean little together."""
    value = _value_getter(decl)
    mode = decl.get("generate", "mode")
    if value(mode) in (None, "greedy"):
        for key in ("temperature", "top_p", "top_k"):
            found = decl.get("generate", key)
            if found is not None and found.value is not _INVALID:
                diagnostics.append(
                    _warn(
                        "KVS125",
                        f"`{key}` has no effect with greedy decoding",
                        found.key_span,
                        help="add `mode = sample` to sample, or remove it",
                    )
                )
    low, high = decl.get("generate", "min_new_tokens"), decl.get("generate", "max_new_tokens")
    longest = value(high) or GenerationSettings().max_new_tokens
    if value(low) is not None and value(low) > longest:
        assert low is not None
        limit = f"the default {longest}" if value(high) is None else f"`max_new_tokens = {longest}`"
        diagnostics.append(
            _err(
                "KVS135",
                f"`min_new_tokens = {value(low)}` exceeds {limit}",
                low.span,
                help="lower `min_new_tokens` or raise `max_new_tokens`",
            )
        )
    penalty = decl.get("generate", "repetition_penalty")
    if value(penalty) is not None and value(penalty) < 1:
        assert penalty is not None
        diagnostics.append(
            _warn(
                "KVS136",
                f"`repetition_penalty = {value(penalty):g}` rewards repetition",
                penalty.span,
                help="values above 1 discourage loops (1.1-1.3 is usual); 1 turns it off",
            )
        )
    ngram = decl.get("generate", "no_repeat_ngram_size")
    if value(ngram) in (1, 2):
        assert ngram is not None
        unit = "word piece" if value(ngram) == 1 else "pair of word pieces"
        diagnostics.append(
            _warn(
                "KVS137",
                f"`no_repeat_ngram_size = {value(ngram)}` forbids repeating any {unit}",
                ngram.span,
                help="ordinary text repeats short n-grams (`the`, `= 4`); 3 or more is usual, "
                "0 turns it off",
            )
        )


def _count_records(path: str) -> int | None:
    """Non-blank lines of a JSONL file (one record each), None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def _check_contrast_counts(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """`shots` and `pairs` against what the demos and the targets are drawn from.

    Without a query pool the N targets are traces and each one's k demos are other
    traces: k <= N - 1 (KVS110; the trace count itself is checked by `kvsl build`).
    With `questions` the N targets come from the pool (N <= its questions, KVS128) and
    the k demos from the traces (k <= the traces, KVS127).
    """
    value = _value_getter(decl)
    pairs, shots = decl.get("contrast", "pairs"), decl.get("contrast", "shots")
    pool = decl.get("contrast", "questions")
    fmt = decl.get("contrast", "format")
    if pool is None:
        if fmt is not None and fmt.value is not _INVALID:
            diagnostics.append(
                _warn(
                    "KVS129",
                    "`format` has no effect without `questions`",
                    fmt.key_span,
                    help='add `questions = "..."` (the query pool the format reads), or remove it',
                )
            )
        if value(pairs) is not None and value(shots) is not None and shots.value > pairs.value - 1:  # type: ignore[union-attr]
            assert pairs is not None and shots is not None
            diagnostics.append(
                _err(
                    "KVS110",
                    f"`shots` must be less than `pairs`: each prompt's {shots.value} demos come "
                    f"from the other pairs, so {shots.value} shots need at least "
                    f"{shots.value + 1} pairs",
                    shots.span,
                    labels=(Label(pairs.span, f"`pairs` is {pairs.value} here"),),
                    help=f"use at most {max(pairs.value - 1, 0)} (`shots = {max(pairs.value - 1, 0)}`), "
                    "or more pairs, or draw the targets from a query pool (`questions = ...`)",
                )
            )
        return
    if value(pool) is None:
        return
    path = _resolve_path(pool.value, pool.directory)
    if not os.path.isfile(path):
        diagnostics.append(
            _err(
                "KVS114",
                f"question file `{pool.value}` does not exist",
                pool.span,
                help=f"the path is relative to the spec: {_shown(path)}",
            )
        )
    elif value(pairs) is not None and (available := _count_records(path)) is not None:
        assert pairs is not None
        if pairs.value > available:
            diagnostics.append(
                _err(
                    "KVS128",
                    f"`pairs` is {pairs.value} but the query pool `{pool.value}` holds "
                    f"{available} questions",
                    pairs.span,
                    labels=(Label(pool.span, f"{available} questions here"),),
                    help=f"use at most `pairs = {available}`, or a larger query pool",
                )
            )
    traces = decl.get("contrast", "traces") or decl.get("teacher", "traces")
    if value(shots) is None or value(traces) is None:
        return
    assert shots is not None and traces is not None
    trace_path = _resolve_path(traces.value, traces.directory)
    count = _count_records(trace_path) if os.path.isfile(trace_path) else None
    if count is not None and shots.value > count:
        diagnostics.append(
            _err(
                "KVS127",
                f"`shots` is {shots.value} but the trace file `{traces.value}` holds {count} "
                "traces: every demo is a trace",
                shots.span,
                labels=(Label(traces.span, f"{count} traces here"),),
                help=f"use at most `shots = {count}`, or add traces with `kvsl teach`",
            )
        )


def _value_getter(decl: Decl) -> Any:
    def value(found: Field | None) -> Any:
        return None if found is None or found.value is _INVALID else found.value

    return value


def _require(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    def missing(key: str, block: str | None, help: str) -> None:
        where = decl.blocks.get(block, decl.name_span) if block else decl.name_span
        if block and decl.path != where.path:
            where = decl.name_span
        message = f"missing key `{key}` in `{block}`" if block else f"missing key `{key}`"
        diagnostics.append(_err("KVS106", message, where, help=help))

    if decl.get(TOP, "description") is None:
        missing("description", None, 'add `description = "..."`: one sentence about the style')
    if "contrast" not in decl.blocks:
        diagnostics.append(
            _err(
                "KVS106",
                "missing block `contrast`",
                decl.name_span,
                help="add `contrast { pairs = 40  shots = 2 }`",
            )
        )
    else:
        if decl.get("contrast", "pairs") is None:
            missing("pairs", "contrast", "add `pairs = 40` (N, the number of contrast pairs)")
        if decl.get("contrast", "shots") is None:
            missing("shots", "contrast", "add `shots = 2` (k demos per prompt, fewer than N)")
        if decl.get("contrast", "traces") is None and decl.get("teacher", "traces") is None:
            missing(
                "traces",
                "contrast",
                'add `traces = "traces/my_style.jsonl"` here or in `teacher`',
            )
    if "teacher" in decl.blocks:
        if decl.get("teacher", "model") is None:
            missing("model", "teacher", 'add `model = "gpt-4o"` (the teacher model)')
        if decl.get("teacher", "template") is None:
            missing("template", "teacher", 'add `template = "../templates/my_style.j2"`')


def _check_template(
    decl: Decl, session: Session, diagnostics: list[Diagnostic]
) -> tuple[str | None, str | None]:
    from kvsl.lang.templates import TemplateOrigin, check_template

    found = decl.get("teacher", "template")
    if found is None or found.value is _INVALID:
        return None, None
    spec_source = session.source(found.span.path)
    node_is_triple = (
        spec_source is not None
        and spec_source.text[found.span.start : found.span.start + 3] == '"""'
    )
    if node_is_triple:
        assert spec_source is not None
        origin = TemplateOrigin(spec_source, found.span.start + 3, found.span)
        diagnostics.extend(check_template(found.value, origin))
        return found.value, None
    path = _resolve_path(found.value, found.directory)
    if "\n" in found.value or "{{" in found.value or "{%" in found.value:
        diagnostics.append(
            _err(
                "KVS200",
                "template file name looks like a template",
                found.span,
                help='write an inline template as a `"""..."""` block; a `"..."` string is a '
                "file path relative to the spec",
            )
        )
        return None, None
    from kvsl.lang.files import FileProblem, read_regular_file
    from kvsl.lang.templates import MAX_TEMPLATE_BYTES

    try:
        text = read_regular_file(path, MAX_TEMPLATE_BYTES).decode("utf-8")
    except (FileProblem, UnicodeDecodeError) as err:
        reason = "is not UTF-8" if isinstance(err, UnicodeDecodeError) else str(err)
        diagnostics.append(
            _err(
                "KVS200",
                f"template file `{found.value}` {reason}",
                found.span,
                help=f"the path is relative to the spec: {_shown(path)}",
            )
        )
        return None, None
    origin = TemplateOrigin(SourceFile(_shown(path), text), 0, found.span)
    diagnostics.extend(check_template(text, origin))
    return text, path


def model_kind(name: str, directory: str) -> tuple[str, str]:
    """(kind, location) of a `model =` value; see `kvsl.lang.plan.ModelRef`.

    >>> model_kind("smollm2-135m", "/specs")
    ('embedded', 'smollm2-135m')
    >>> model_kind("Qwen/Qwen2.5-0.5B-Instruct", "/nonexistent")
    ('hub', 'Qwen/Qwen2.5-0.5B-Instruct')
    >>> model_kind("../models/m.gguf", "/specs")
    ('gguf', '/models/m.gguf')
    """
    if name in EMBEDDED_MODELS:
        return "embedded", name
    local = _resolve_path(name, directory)
    if name.lower().endswith(".gguf"):
        return "gguf", local
    if name.startswith(("./", "../", "/", "~")) or os.path.isdir(local):
        return "directory", local
    return "hub", name


def _check_model(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    found = decl.get(TOP, "model")
    if found is None or found.value is _INVALID:
        return
    kind, location = model_kind(found.value, found.directory)
    if kind == "gguf" and not os.path.isfile(location):
        diagnostics.append(
            _err(
                "KVS120",
                f"model file `{found.value}` does not exist",
                found.span,
                help=f"the path is relative to the spec: {_shown(location)}",
            )
        )
    elif kind == "directory" and not os.path.isdir(location):
        diagnostics.append(
            _err(
                "KVS120",
                f"model directory `{found.value}` does not exist",
                found.span,
                help=f"the path is relative to the spec: {_shown(location)}",
            )
        )
    elif kind == "hub" and "/" not in found.value:
        close = get_close_matches(found.value, list(EMBEDDED_MODELS), n=1, cutoff=0.7)
        if close:
            diagnostics.append(
                _warn(
                    "KVS121",
                    f"`{found.value}` is not an embedded model and will be looked up on the "
                    "Hugging Face hub",
                    found.span,
                    help=f"did you mean the embedded `{close[0]}`?",
                )
            )


def _check_steer(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    layers = decl.get("steer", "layers")
    model = decl.get(TOP, "model")
    model_name = model.value if model is not None and model.value is not _INVALID else None
    if model is None:
        from kvsl.lang.plan import DEFAULT_MODEL

        model_name = DEFAULT_MODEL
    num_layers = EMBEDDED_MODEL_LAYERS.get(model_name) if model_name else None

    selections: list[tuple[tuple[LayerSpan, ...], Span]] = []
    if layers is not None and layers.value is not _INVALID:
        selections.append((layers.value, layers.span))
    for override in decl.overrides or ():
        selections.append((override.layers, override.layers_span))
    for spans, where in selections:
        if num_layers is None:
            continue
        for layer_span in spans:
            # a range object, never materialised: `[1..100000000]` costs nothing here
            chosen = layer_span.resolve(num_layers)
            if chosen.start >= chosen.stop:
                diagnostics.append(
                    _err(
                        "KVS112",
                        f"layer range `{_span_text(layer_span)}` is empty on `{model_name}` "
                        f"({num_layers} layers)",
                        where,
                        help="ranges are inclusive and count up; -1 is the last layer",
                    )
                )
            elif chosen.start < 0 or chosen.stop - 1 >= num_layers:
                diagnostics.append(
                    _err(
                        "KVS113",
                        f"layer `{_span_text(layer_span)}` is outside `{model_name}`, which has "
                        f"{num_layers} layers (0..{num_layers - 1})",
                        where,
                        help=f"use layers 0..{num_layers - 1}, or -1 for the last one",
                    )
                )
    if layers is not None and layers.value is not _INVALID:
        if num_layers is not None:
            # Out-of-range spans already have their error; only in-range ones count here.
            # (`0 in range(...)` is arithmetic: no set of layers is built.)
            includes_zero = any(
                0 in s.resolve(num_layers) for s in layers.value if s.resolve(num_layers).start >= 0
            )
        else:
            includes_zero = any(s.start == 0 for s in layers.value)
        if includes_zero:
            diagnostics.append(
                _warn(
                    "KVS124",
                    "steering layer 0 has no effect on values",
                    layers.span,
                    help="at layer 0 both prompts' last token (the same offset token) has the "
                    "same value vector, so the value difference is zero: start at `[1..]`",
                )
            )
    key = decl.get("steer", "key")
    nonzero = [key] if key is not None and key.value is not _INVALID and key.value != 0 else []
    nonzero += [o.key for o in decl.overrides or () if o.key is not None and o.key.value != 0]
    for found in nonzero[:1]:
        diagnostics.append(
            _warn(
                "KVS123",
                f"non-zero key coefficient `{found.value:g}`",
                found.span,
                help="keys are cached after RoPE, so a key vector mixes positions; the "
                "reference method keeps `key = 0`",
            )
        )


def _span_text(layer_span: LayerSpan) -> str:
    if layer_span.stop is None:
        return f"{layer_span.start}.."
    if layer_span.start == layer_span.stop:
        return str(layer_span.start)
    return f"{layer_span.start}..{layer_span.stop}"


def meaning_despite_syntax(source: SourceFile, syntax: list[Diagnostic]) -> list[Diagnostic]:
    """Meaning diagnostics of the lines no syntax error touched (see kvsl.lang.partial)."""
    from kvsl.lang.partial import UNSAFE_AFTER_BLANKING, without_broken_lines

    salvaged = without_broken_lines(source, syntax)
    if salvaged is None:
        return []
    if isinstance(salvaged, Diagnostic):
        return [salvaged]
    _, meaning = analyze(salvaged)
    return [d for d in meaning if d.code not in UNSAFE_AFTER_BLANKING]
