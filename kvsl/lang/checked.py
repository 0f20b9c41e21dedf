"""The checked declaration: what the checker hands on about each key of a spec.

`kvsl.lang.analyze` reads one file into a `Decl`; `kvsl.lang.extends` merges it over
its bases; `kvsl.lang.check` checks the result as a whole into a `Resolved`, which
`kvsl.lang.lower` turns into a plan. Each key's value is a `Field`: the value, where it
was written, the folder of the file that wrote it, and whether it was a `\"\"\"...\"\"\"`
block.

A key whose value failed its check is kept, so that it still counts as present (no
"missing key" on top of the real error), but with `INVALID` as its value. The typed
accessors (`Field.integer()`, `Decl.text(block, key)`, ...) answer None for such a key
and for a missing one, so every later step (cross-checks, lowering) skips both without
looking at the sentinel, and gets a value of the type it needs.

>>> from kvsl.lang.parser import parse_text
>>> from kvsl.lang.analyze import analyze
>>> spec, _ = parse_text('style "s" { contrast { pairs = 4  shots = "2" } }', "s.kvs")
>>> decl, _ = analyze(spec)
>>> decl.integer("contrast", "pairs"), decl.integer("contrast", "shots")
(4, None)
>>> decl.get("contrast", "shots").value is INVALID
True
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Final, TypeGuard, TypeVar

from kvsl.lang.plan import LayerSpan
from kvsl.lang.source import Span


class Invalid(enum.Enum):
    """The type of `INVALID` (an enum member, so a type checker can tell it apart)."""

    INVALID = "invalid"


INVALID: Final = Invalid.INVALID
"""The value of a field whose value failed its check (compare with `is`)."""

# What a checked value is, by the key's kind (`kvsl.lang.schema.Kind`): a string or a
# choice → str; int → int; float → float; strings and regexes → tuple[str, ...];
# layers → tuple[LayerSpan, ...].
CheckedValue = str | int | float | tuple[str, ...] | tuple[LayerSpan, ...]

C = TypeVar("C", bound=str)


def resolve_path(value: str, directory: str) -> str:
    """`value` (`~` expanded) relative to `directory`, the folder of the file that wrote it.

    The one rule for path values, shared by the checker and lowering (paths written in a
    base resolve against the base, also through `extends`).

    >>> resolve_path("traces/x.jsonl", "specs")
    'specs/traces/x.jsonl'
    >>> resolve_path("/abs/x.jsonl", "specs")
    '/abs/x.jsonl'
    """
    expanded = os.path.expanduser(value)
    return os.path.normpath(os.path.join(directory, expanded))


def _is_strings(value: object) -> TypeGuard[tuple[str, ...]]:
    return isinstance(value, tuple) and all(isinstance(item, str) for item in value)


def _is_layers(value: object) -> TypeGuard[tuple[LayerSpan, ...]]:
    return isinstance(value, tuple) and all(isinstance(item, LayerSpan) for item in value)


@dataclass(frozen=True)
class Field:
    """A checked value with where it came from."""

    value: CheckedValue | Invalid
    span: Span  # the value as written
    key_span: Span
    directory: str  # directory of the file it was written in (relative paths start here)
    triple: bool = False  # written as a verbatim `"""..."""` block (an inline template)

    @property
    def valid(self) -> bool:
        return self.value is not INVALID

    def text(self) -> str | None:
        """The value of a string or choice key; None when it failed its check."""
        return self.value if isinstance(self.value, str) else None

    def integer(self) -> int | None:
        return self.value if isinstance(self.value, int) else None

    def number(self) -> float | None:
        """The value of a number key as a float (an integer key's too)."""
        return float(self.value) if isinstance(self.value, int | float) else None

    def strings(self) -> tuple[str, ...] | None:
        return self.value if _is_strings(self.value) else None

    def layers(self) -> tuple[LayerSpan, ...] | None:
        return self.value if _is_layers(self.value) else None

    def resolved_path(self) -> str | None:
        """A path value resolved against the folder of the file that wrote it."""
        text = self.text()
        return None if text is None else resolve_path(text, self.directory)


@dataclass(frozen=True)
class OverrideDecl:
    """`at [layers] { key = ..  value = .. }` inside `steer`; a coefficient left out is None."""

    layers: tuple[LayerSpan, ...]
    layers_span: Span
    key: Field | None
    value: Field | None


@dataclass(frozen=True)
class Decl:
    """One style (or base) declaration, checked locally or merged through `extends`.

    `get` answers a key's `Field` as written (valid or not); the typed accessors answer
    its value when it is there and valid, else None.
    """

    path: str
    kind: str  # "style" or "base"
    name: str | None
    name_span: Span
    values: dict[str, dict[str, Field]]  # "style" → its own keys; block name → keys
    blocks: dict[str, Span]  # block kind → span of its name
    overrides: tuple[OverrideDecl, ...] | None  # None: no `at` blocks written
    extends: Field | None
    incomplete: bool = False  # a base failed to load: skip missing-key checks
    # (block, key) an unknown key was taken for ("did you mean `pairs`?", KVS104): that key
    # is not also reported missing (KVS106), since the one fix is to correct the spelling.
    misspelt: frozenset[tuple[str, str]] = frozenset()

    def get(self, block: str, key: str) -> Field | None:
        return self.values.get(block, {}).get(key)

    def valid(self, block: str, key: str) -> Field | None:
        """The key's field when it is written and its value passed its check."""
        found = self.get(block, key)
        return found if found is not None and found.valid else None

    def text(self, block: str, key: str) -> str | None:
        found = self.get(block, key)
        return None if found is None else found.text()

    def integer(self, block: str, key: str) -> int | None:
        found = self.get(block, key)
        return None if found is None else found.integer()

    def number(self, block: str, key: str) -> float | None:
        found = self.get(block, key)
        return None if found is None else found.number()

    def strings(self, block: str, key: str) -> tuple[str, ...] | None:
        found = self.get(block, key)
        return None if found is None else found.strings()

    def layers(self, block: str, key: str) -> tuple[LayerSpan, ...] | None:
        found = self.get(block, key)
        return None if found is None else found.layers()

    def resolved_path(self, block: str, key: str) -> str | None:
        found = self.get(block, key)
        return None if found is None else found.resolved_path()

    def choice(self, block: str, key: str, options: tuple[C, ...]) -> C | None:
        """The value of a choice key as one of `options` (typed like them), else None."""
        text = self.text(block, key)
        return next((option for option in options if option == text), None)


@dataclass(frozen=True)
class Resolved:
    """A merged declaration after the whole-spec checks, ready for lowering."""

    decl: Decl
    template_source: str | None = None
    template_path: str | None = None
