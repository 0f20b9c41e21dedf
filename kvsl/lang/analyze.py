"""One file's checks: its syntax tree read against the key schema into a `Decl`.

`analyze` finds the file's one `style` (or `base`) block and reads every key in it
against `kvsl.lang.schema`: unknown, duplicate and misplaced keys and blocks, and each
value's type and range (`kvsl.lang.values`). Each key becomes a `Field` that remembers
its span, whether it was a `\"\"\"...\"\"\"` block, and the folder of the file it was
written in (relative paths resolve against the file that wrote them, also through
`extends`). Nothing here reads another file: that is `kvsl.lang.extends`.

>>> from kvsl.lang.parser import parse_text
>>> spec, _ = parse_text('style "s" { contrast { pairz = 4 } }', "s.kvs")
>>> decl, diagnostics = analyze(spec)
>>> [(d.code, d.message) for d in diagnostics]
[('KVS104', 'unknown key `pairz` in `contrast`')]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from kvsl.lang.checked import INVALID, Decl, Field, OverrideDecl
from kvsl.lang.diagnostics import Diagnostic, Label
from kvsl.lang.phrasing import closest, error, joined, suggestion
from kvsl.lang.plan import LayerSpan
from kvsl.lang.schema import BLOCK_KEYS, OVERRIDE_KEYS, STYLE_KEYS, STYLE_KINDS, TOP, KeySpec
from kvsl.lang.source import Span
from kvsl.lang.syntax import Assignment, Block, ListValue, Spec, String
from kvsl.lang.values import convert, convert_layers

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_AT_HELP = "`at [layers] { ... }` blocks belong in `steer`"


def analyze(spec: Spec) -> tuple[Decl | None, list[Diagnostic]]:
    """Check one file's tree locally; returns its declaration (None when it has none)."""
    diagnostics: list[Diagnostic] = []
    if not spec.items:
        diagnostics.append(
            error(
                "KVS006",
                "empty spec: no `style` block",
                Span.whole_file(spec.path),
                help='a spec declares one style: `style "my-style" { description = "..." }`',
            )
        )
        return None, diagnostics
    block = _the_style(spec, diagnostics)
    if block is None:
        return None, diagnostics
    reader = _Reader(os.path.dirname(os.path.abspath(spec.path)), diagnostics)
    name = _style_name(block, diagnostics)
    for item in block.items:
        if isinstance(item, Assignment):
            reader.style_key(item)
        else:
            reader.block(item)
    decl = Decl(
        path=spec.path,
        kind=block.kind,
        name=name,
        name_span=block.header.span if block.header is not None else block.kind_span,
        values=reader.values,
        blocks=reader.blocks,
        overrides=tuple(reader.overrides) if reader.saw_at else None,
        extends=reader.values[TOP].get("extends"),
        misspelt=frozenset(reader.misspelt),
    )
    return decl, diagnostics


def _the_style(spec: Spec, diagnostics: list[Diagnostic]) -> Block | None:
    """The file's first `style`/`base` block; every other top-level item is an error."""
    styles: list[Block] = []
    for item in spec.items:
        if isinstance(item, Block) and item.kind in STYLE_KINDS:
            if styles:
                diagnostics.append(
                    error(
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
            error(
                "KVS100",
                f"expected a `style` block at the top level, found {what}",
                span,
                help='settings go inside `style "name" { ... }`',
            )
        )
    return styles[0] if styles else None


def _style_name(block: Block, diagnostics: list[Diagnostic]) -> str | None:
    header = block.header
    if not isinstance(header, String) or header.triple:
        diagnostics.append(
            error(
                "KVS102",
                f"`{block.kind}` needs a name in quotes",
                header.span if header is not None else block.kind_span,
                help=f'write `{block.kind} "my-style" {{`',
            )
        )
        return None
    if not _NAME.fullmatch(header.value):
        diagnostics.append(
            error(
                "KVS103",
                f"invalid style name `{header.value}`",
                header.span,
                help="use letters, digits, `-`, `_` and `.`, starting with a letter or digit "
                "(at most 64 characters)",
            )
        )
    return header.value


@dataclass
class _Reader:
    """What one style block's items add up to, read item by item."""

    directory: str  # the folder of the file being read
    diagnostics: list[Diagnostic]
    values: dict[str, dict[str, Field]] = field(default_factory=lambda: {TOP: {}})
    blocks: dict[str, Span] = field(default_factory=dict)
    overrides: list[OverrideDecl] = field(default_factory=list)
    saw_at: bool = False  # an `at` block was written (even one that failed its checks)
    misspelt: set[tuple[str, str]] = field(default_factory=set)  # see `Decl.misspelt`

    def style_key(self, item: Assignment) -> None:
        """`key = value` directly in the style."""
        if item.key in STYLE_KEYS:
            self.assign(self.values[TOP], STYLE_KEYS[item.key], item)
        elif item.key in BLOCK_KEYS:
            self.diagnostics.append(
                error(
                    "KVS107",
                    f"`{item.key}` is a block, not a value",
                    item.span,
                    help=f"write `{item.key} {{ ... }}`",
                )
            )
        else:
            candidates = list(STYLE_KEYS) + list(BLOCK_KEYS)
            _unknown(item.key, item.key_span, None, candidates, self.diagnostics)
            self.note_misspelt(TOP, item.key, candidates)

    def block(self, item: Block) -> None:
        """A block directly in the style: `contrast { ... }`, `steer { ... }`, ..."""
        if item.kind not in BLOCK_KEYS:
            self.misplaced_block(item)
            return
        if item.kind in self.blocks:
            self.diagnostics.append(
                error(
                    "KVS105",
                    f"duplicate block `{item.kind}`",
                    item.kind_span,
                    help="merge the two blocks into one",
                    labels=(Label(self.blocks[item.kind], "first written here"),),
                )
            )
            return
        self.blocks[item.kind] = item.kind_span
        if item.header is not None:
            self.diagnostics.append(
                error(
                    "KVS107",
                    f"`{item.kind}` takes no header",
                    item.header.span,
                    help=f"write `{item.kind} {{ ... }}`",
                )
            )
        own = self.values.setdefault(item.kind, {})
        for inner in item.items:
            if isinstance(inner, Assignment):
                self.block_key(own, item.kind, inner)
            else:
                self.inner_block(item.kind, inner)

    def misplaced_block(self, item: Block) -> None:
        """A block in the style that is a key of the style, or nothing at all."""
        if item.kind in STYLE_KEYS:
            self.diagnostics.append(
                error(
                    "KVS107",
                    f"`{item.kind}` takes a value, not a block",
                    item.kind_span,
                    help=f"write `{item.kind} = ...`",
                )
            )
            return
        help = _AT_HELP if item.kind == "at" else None
        _unknown(item.kind, item.kind_span, None, list(BLOCK_KEYS), self.diagnostics, help, "block")

    def block_key(self, own: dict[str, Field], block: str, inner: Assignment) -> None:
        keys = BLOCK_KEYS[block]
        if inner.key in keys:
            self.assign(own, keys[inner.key], inner)
        else:
            _unknown(inner.key, inner.key_span, block, list(keys), self.diagnostics)
            self.note_misspelt(block, inner.key, list(keys))

    def note_misspelt(self, block: str, key: str, candidates: list[str]) -> None:
        close = closest(key, candidates)
        if close is not None:
            self.misspelt.add((block, close))

    def inner_block(self, block: str, inner: Block) -> None:
        """A block inside a block: only `at [layers] { ... }` inside `steer` is one."""
        if inner.kind == "at" and block == "steer":
            self.saw_at = True
            override = self.override(inner)
            if override is not None:
                self.overrides.append(override)
        elif inner.kind in BLOCK_KEYS[block]:
            self.diagnostics.append(
                error(
                    "KVS107",
                    f"`{inner.kind}` takes a value, not a block",
                    inner.kind_span,
                    help=f"write `{inner.kind} = ...`",
                )
            )
        else:
            help = _AT_HELP if inner.kind == "at" else None
            candidates = list(BLOCK_KEYS[block])
            _unknown(
                inner.kind, inner.kind_span, block, candidates, self.diagnostics, help, "block"
            )

    def assign(self, target: dict[str, Field], spec: KeySpec, item: Assignment) -> None:
        if item.key in target:
            self.diagnostics.append(
                error(
                    "KVS105",
                    f"duplicate key `{item.key}`",
                    item.key_span,
                    help="remove one of the two",
                    labels=(Label(target[item.key].key_span, "first set here"),),
                )
            )
            return
        value = convert(spec, item.key, item.value, self.diagnostics)
        # A key with a bad value still counts as present (no "missing key" on top of it);
        # the sentinel keeps it out of cross-checks and lowering.
        triple = isinstance(item.value, String) and item.value.triple
        target[item.key] = Field(
            INVALID if value is None else value,
            item.value.span,
            item.key_span,
            self.directory,
            triple,
        )

    def override(self, block: Block) -> OverrideDecl | None:
        """`at [layers] { key = ..  value = .. }`; None when its layers failed their check."""
        header = block.header
        layers: tuple[LayerSpan, ...] | None = None
        if not isinstance(header, ListValue):
            self.diagnostics.append(
                error(
                    "KVS107",
                    "`at` needs a list of layers",
                    header.span if header is not None else block.kind_span,
                    help="write `at [1..4] { value = 4 }`",
                )
            )
        else:
            layers = convert_layers("at", header, self.diagnostics)
        found: dict[str, Field] = {}
        for inner in block.items:
            if isinstance(inner, Assignment) and inner.key in OVERRIDE_KEYS:
                self.assign(found, OVERRIDE_KEYS[inner.key], inner)
            else:
                key = inner.key if isinstance(inner, Assignment) else inner.kind
                span = inner.key_span if isinstance(inner, Assignment) else inner.kind_span
                _unknown(key, span, "at", list(OVERRIDE_KEYS), self.diagnostics)
        if layers is None or header is None:
            return None
        key_field, value_field = found.get("key"), found.get("value")
        return OverrideDecl(
            layers,
            header.span,
            key_field if key_field is not None and key_field.valid else None,
            value_field if value_field is not None and value_field.valid else None,
        )


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
        help = suggestion(key, candidates)
        if help is None:
            help = f"known keys{where}: {joined(sorted(candidates))}"
    diagnostics.append(error("KVS104", f"unknown {noun} `{key}`{where}", span, help=help))
