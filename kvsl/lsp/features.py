"""Hover, completion, go-to-definition, formatting and quick fixes, on text and trees.

Plain functions over an `Analysis` (or the text alone, for completion); `server.py`
turns their results into LSP messages. Offsets are code points into the document.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lsprotocol import types as lsp

from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.plan import EMBEDDED_MODELS, LayerSpan
from kvsl.lang.syntax import Assignment, Block, Ident, Number, Range, Spec, String
from kvsl.lsp.analysis import Analysis
from kvsl.lsp.cursor import (
    Target,
    completion_context,
    layer_nodes,
    string_at,
    target_at,
)
from kvsl.lsp.schema import (
    PATH_KEYS,
    blocks_of,
    builtin_style_descriptions,
    compact,
    key_info,
    keys_of,
    layer_text,
    model_layers,
    resolved_layers,
    style_description,
)

MAX_PATH_ITEMS = 200

# --- hover -----------------------------------------------------------------------------


def hover(analysis: Analysis, offset: int) -> tuple[str, int, int] | None:
    """(markdown, start, end) for the node at `offset`, or None."""
    if analysis.spec is None:
        return None
    target = target_at(analysis.spec, offset)
    if target is None:
        return None
    block = target.blocks[-1] if target.blocks else None
    if target.what == "key":
        info = key_info(block, target.name)
        assert isinstance(target.node, Assignment)
        span = target.node.key_span
        return (info.markdown(), span.start, span.end) if info else None
    if target.what == "block":
        assert isinstance(target.node, Block)
        return (
            _block_hover(target.node, block),
            target.node.kind_span.start,
            target.node.kind_span.end,
        )
    if target.what == "header" and target.name in ("style", "base"):
        return _style_hover(analysis, target)
    layered = (target.what == "value" and target.name == "layers") or (
        target.what == "header" and target.name == "at"
    )
    if layered:
        return _layers_hover(analysis, target, offset)
    if target.what == "value":
        info = key_info(block, target.name)
        node = target.node.value  # type: ignore[attr-defined]
        return (info.markdown(), node.span.start, node.span.end) if info else None
    return None


def _block_hover(block: Block, parent: str | None) -> str:
    if block.kind in ("style", "base"):
        what = "a style" if block.kind == "style" else "shared defaults, only ever extended"
        return f"**`{block.kind}`**: {what}\n\nblocks: " + ", ".join(
            f"`{b}`" for b in blocks_of(None)
        )
    keys = keys_of(block.kind)
    if block.kind not in blocks_of(parent) or not keys:
        return f"**`{block.kind}`**: not a block here"
    lines = [f"**`{block.kind}`** block", ""]
    lines += [f"- `{key}`: {spec.doc}" for key, spec in keys.items()]
    return "\n".join(lines)


def _style_hover(analysis: Analysis, target: Target) -> tuple[str, int, int] | None:
    header = target.inner
    if not isinstance(header, String):
        return None
    description = style_description(header.value)
    if description is not None:
        text = f"**{header.value}** (built-in style)\n\n{description}"
    else:
        own = analysis.decl.get("style", "description") if analysis.decl else None
        if own is None or not isinstance(own.value, str):
            return None
        text = f"**{header.value}**\n\n{own.value}"
    return text, header.span.start, header.span.end


def _layers_hover(analysis: Analysis, target: Target, offset: int) -> tuple[str, int, int] | None:
    known = model_layers(analysis.decl)
    if known is None:
        return None
    model, count = known
    node = target.inner
    whole = target.node.value if target.what == "value" else target.node.header  # type: ignore[attr-defined]
    picked = node if isinstance(node, Number | Range) else whole
    if isinstance(whole, Ident) and whole.name == "all":
        spans: tuple[LayerSpan, ...] = (LayerSpan(0, None),)
    else:
        spans = tuple(s for s in (_layer_span(n) for n in layer_nodes(picked)) if s is not None)
    if not spans:
        return None
    layers = resolved_layers(spans, count)
    written = ", ".join(layer_text(s) for s in spans)
    text = (
        f"`{written}` on `{model}` ({counted(count, 'layer')}, 0..{count - 1}): "
        f"layers {compact(layers)} ({counted(len(layers), 'layer')})"
    )
    return text, picked.span.start, picked.span.end  # type: ignore[attr-defined]


def _layer_span(node: Number | Range) -> LayerSpan | None:
    if isinstance(node, Number) and isinstance(node.value, int):
        return LayerSpan(node.value, node.value)
    if isinstance(node, Range) and isinstance(node.start.value, int):
        stop = node.stop.value if node.stop is not None else None
        return LayerSpan(node.start.value, stop if isinstance(stop, int) else None)
    return None


# --- completion ------------------------------------------------------------------------


def completions(text: str, offset: int, path: str) -> list[lsp.CompletionItem]:
    """Completion items at `offset` of a document at `path` (its text need not parse)."""
    context = completion_context(text, offset)
    inner = context.blocks[-1] if context.blocks else None
    if context.what == "key":
        if inner is None:
            return [
                _item(kind, lsp.CompletionItemKind.Class, f'{kind} "$1" {{\n\t$0\n}}', snippet=True)
                for kind in ("style", "base")
            ]
        items = [
            _item(key, lsp.CompletionItemKind.Property, f"{key} = ", detail=spec.doc)
            for key, spec in keys_of(inner).items()
        ]
        items += [
            _item(block, lsp.CompletionItemKind.Module, f"{block} {{\n\t$0\n}}", snippet=True)
            for block in blocks_of(inner)
            if block != "at"
        ]
        if "at" in blocks_of(inner):
            items.append(
                _item("at", lsp.CompletionItemKind.Module, "at [$1] { value = $0 }", snippet=True)
            )
        return items
    if context.what == "style_name":
        return [
            _item(name, lsp.CompletionItemKind.Constant, name, detail=description)
            for name, description in builtin_style_descriptions().items()
        ]
    spec = keys_of(inner).get(context.key or "")
    if spec is None:
        return []
    if context.what == "value":
        if spec.kind == "choice":
            return [_item(c, lsp.CompletionItemKind.EnumMember, c) for c in spec.choices]
        if spec.kind == "layers":
            return [
                _item("all", lsp.CompletionItemKind.EnumMember, "all"),
                _item(
                    "[1..]",
                    lsp.CompletionItemKind.Value,
                    "[1..]",
                    detail="every layer but the first",
                ),
            ]
        return []
    if context.what == "string" and context.key in PATH_KEYS:
        return path_items(os.path.dirname(path), context.partial, PATH_KEYS[context.key])
    if context.what == "string" and context.key == "model" and inner in ("style", "base"):
        return [_item(name, lsp.CompletionItemKind.Constant, name) for name in EMBEDDED_MODELS]
    return []


def _item(
    label: str,
    kind: lsp.CompletionItemKind,
    insert: str,
    *,
    detail: str | None = None,
    snippet: bool = False,
) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        insert_text=insert,
        insert_text_format=lsp.InsertTextFormat.Snippet
        if snippet
        else lsp.InsertTextFormat.PlainText,
    )


def path_items(directory: str, partial: str, suffixes: tuple[str, ...]) -> list[lsp.CompletionItem]:
    """Files and folders under `directory` matching what was typed (`../templ`).

    Folders always; files with one of `suffixes` first (others too, sorted after them).
    Only the last part of the path is completed, so the item's text is its name.
    """
    head, _, stem = partial.rpartition("/")
    folder = os.path.normpath(os.path.join(directory, os.path.expanduser(head or ".")))
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    items = []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem):
            continue
        if not entry.name.isprintable() or _not_utf8(entry.name):
            continue  # a spec (UTF-8 text) cannot name it, and a label holding it breaks JSON
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            kind, rank, label = lsp.CompletionItemKind.Folder, "1", entry.name + "/"
        else:
            wanted = entry.name.endswith(suffixes)
            kind, rank, label = lsp.CompletionItemKind.File, "0" if wanted else "2", entry.name
        item = _item(label, kind, label)
        item.sort_text = rank + entry.name
        items.append(item)
        if len(items) >= MAX_PATH_ITEMS:
            break
    return sorted(items, key=lambda item: item.sort_text or "")


def _not_utf8(name: str) -> bool:
    """Whether a file name came from bytes that are not UTF-8 (Python keeps them as lone
    surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# --- definition ------------------------------------------------------------------------


def definition(analysis: Analysis, offset: int) -> str | None:
    """The file a path key at `offset` names (`extends`, `template`, `traces`, ...)."""
    if analysis.spec is None:
        return None
    target = target_at(analysis.spec, offset)
    if target is None or target.what not in ("key", "value") or target.name not in PATH_KEYS:
        return None
    value = target.node.value  # type: ignore[attr-defined]
    if not isinstance(value, String) or value.triple:
        return None
    if target.what == "value" and string_at(target) is None:
        return None
    path = os.path.normpath(
        os.path.join(os.path.dirname(analysis.path), os.path.expanduser(value.value))
    )
    return path if os.path.isfile(path) else None


# --- outline -------------------------------------------------------------------------


@dataclass(frozen=True)
class Symbol:
    """One entry of the outline: a block or a key, with its children."""

    name: str
    detail: str
    block: bool
    span: tuple[int, int]  # the whole item
    name_span: tuple[int, int]  # its name
    children: tuple[Symbol, ...] = ()


def outline(spec: Spec | None, text: str) -> list[Symbol]:
    """Blocks and keys of a parsed spec, nested as written (empty on syntax errors)."""
    if spec is None:
        return []

    def symbol(item: Assignment | Block) -> Symbol:
        whole = (item.span.start, item.span.end)
        if isinstance(item, Assignment):
            value = text[item.value.span.start : item.value.span.end]
            if len(value) > 60 or "\n" in value:
                value = value[:57].split("\n")[0] + "..."
            name = (item.key_span.start, item.key_span.end)
            return Symbol(item.key, value, block=False, span=whole, name_span=name)
        header = text[item.header.span.start : item.header.span.end] if item.header else ""
        return Symbol(
            item.kind,
            header,
            block=True,
            span=whole,
            name_span=(item.kind_span.start, item.kind_span.end),
            children=tuple(symbol(inner) for inner in item.items),
        )

    return [symbol(item) for item in spec.items]


# --- formatting ------------------------------------------------------------------------


def formatted(text: str, path: str) -> str | None:
    """The canonical text (`kvsl fmt`), or None when the file has syntax errors."""
    from kvsl.lang.fmt import format_text

    result, _ = format_text(text, path)
    return result


# --- quick fixes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    """One edit that resolves one diagnostic: replace [start, end) with `new_text`."""

    title: str
    diagnostic: Diagnostic
    start: int
    end: int
    new_text: str


_REPLACEMENTS = (
    re.compile(r"did you mean (?:the embedded )?`([^`]+)`\?"),
    re.compile(r"write the number without quotes: `([^`]+)`"),
    re.compile(r"write it in quotes: `([^`]+)`"),
)
_MISSING = re.compile(r"missing (?:key `(\w+)`(?: in `(\w+)`)?|block `(\w+)`)")
_ADD = re.compile(r"add `([^`]+)`")


def fixes(analysis: Analysis) -> list[Fix]:
    """Quick fixes for the document's own diagnostics, where the diagnostic knows the fix."""
    found = []
    for diagnostic in analysis.diagnostics.get(analysis.path, []):
        fix = _replacement(analysis, diagnostic) or _insertion(analysis, diagnostic)
        if fix is not None:
            found.append(fix)
    return found


def _replacement(analysis: Analysis, d: Diagnostic) -> Fix | None:
    if not d.help or d.span.end <= d.span.start:
        return None
    for pattern in _REPLACEMENTS:
        match = pattern.search(d.help)
        if match:
            new = match.group(1)
            old = analysis.text[d.span.start : d.span.end]
            if old.startswith('"') and not new.startswith('"') and pattern is _REPLACEMENTS[0]:
                from kvsl.lang.fmt import escape_string

                new = escape_string(new)
            return Fix(f"replace with `{new}`", d, d.span.start, d.span.end, new)
    return None


def _insertion(analysis: Analysis, d: Diagnostic) -> Fix | None:
    """A missing key or block (KVS106): add the line the help suggests, in its block."""
    missing = _MISSING.fullmatch(d.message)
    add = _ADD.search(d.help or "")
    if d.code != "KVS106" or missing is None or add is None or analysis.spec is None:
        return None
    key, block_name, new_block = missing.groups()
    owner = _block_named_at(analysis.spec, d.span.start)
    if owner is None:
        return None
    line = add.group(1)
    if block_name and owner.kind != block_name:
        line = f"{block_name} {{ {line} }}"  # the block lives in a base: add our own
    text = analysis.text
    outer = _indent_of(text, owner.kind_span.start)
    inner = outer + "  "
    close = owner.close_span.start
    line_start = text.rfind("\n", 0, close) + 1
    if not text[line_start:close].strip():
        edit = (line_start, inner + line + "\n")
    else:
        edit = (close, "\n" + inner + line + "\n" + outer)
    what = f"`{key}`" if key else f"block `{new_block}`"
    return Fix(f"add {what}", d, edit[0], edit[0], edit[1])


def _block_named_at(spec: Spec, offset: int) -> Block | None:
    """The style, or a block directly in it, whose name or header starts at `offset`
    (where KVS106 points); deeper blocks (`at`) never miss a key."""
    for style in spec.items:
        if not isinstance(style, Block):
            continue
        for block in (style, *(i for i in style.items if isinstance(i, Block))):
            header = block.header.span.start if block.header is not None else -1
            if offset in (block.kind_span.start, header):
                return block
    return None


def _indent_of(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:offset]
    return line[: len(line) - len(line.lstrip(" \t"))]


__all__ = ["Fix", "Symbol", "completions", "definition", "fixes", "formatted", "hover", "outline"]
