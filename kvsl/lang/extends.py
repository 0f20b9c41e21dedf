"""The `extends` resolver: the one part of the checker that reads spec files.

A `Session` is one run of the checker. `Session.analyze_file` reads, parses and
analyses a file once (a base shared by many specs is read once); `Session.resolve`
follows a spec's `extends` chain (cycles, depth and file problems are diagnostics) and
merges each base's fields under the spec's own. The merged `Decl` then goes to the
whole-spec checks (`kvsl.lang.check.check_resolved`).

>>> decl, diagnostics = Session().resolve("/nonexistent.kvs")
>>> decl, [d.code for d in diagnostics]
(None, ['KVS008'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from kvsl.lang.analyze import analyze
from kvsl.lang.checked import Decl, Field, resolve_path
from kvsl.lang.diagnostics import Diagnostic, Label
from kvsl.lang.partial import meaning_despite_syntax
from kvsl.lang.phrasing import error, relative_help, shortened, shown
from kvsl.lang.reading import SourceRead
from kvsl.lang.schema import TOP
from kvsl.lang.source import SourceFile

# A base of a base of a base is already rare; a chain this long is a mistake, and
# following it further would only spend the stack.
MAX_EXTENDS_DEPTH = 16

# One link of an `extends` chain: the real path of a spec, and its `extends` field.
Link = tuple[str, Field]


@dataclass
class Session:
    """One run of the checker: parsed files are cached, so a shared base is read once."""

    local: dict[str, tuple[Decl | None, list[Diagnostic], SourceFile | None]] = field(
        default_factory=dict
    )
    # Specs read before the session, by a name that is no file (`<stdin>`): what reading
    # them gave (`kvsl.lang.reading.read_stdin`). Their relative paths start in the
    # current directory, as the folder of a name without one.
    given: dict[str, SourceRead] = field(default_factory=dict)

    def _key(self, path: str) -> str:
        return path if path in self.given else os.path.realpath(path)

    def analyze_file(self, path: str) -> tuple[Decl | None, list[Diagnostic]]:
        key = self._key(path)
        if key not in self.local:
            from kvsl.lang.parser import load_source, parse_source

            source, diagnostics = self.given[path] if path in self.given else load_source(path)
            diagnostics = list(diagnostics)
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
        """The text of a file this session has read (None when it has not)."""
        entry = self.local.get(self._key(path))
        return entry[2] if entry else None

    def resolve(
        self, path: str, chain: tuple[Link, ...] = ()
    ) -> tuple[Decl | None, list[Diagnostic]]:
        """The declaration in `path` merged over its `extends` chain."""
        decl, diagnostics = self.analyze_file(path)
        extends = decl.extends if decl is not None else None
        written = extends.text() if extends is not None else None
        if decl is None or extends is None or written is None:
            return decl, diagnostics  # no `extends`, or one already reported as invalid
        target = resolve_path(written, extends.directory)
        real = os.path.realpath(target)
        seen = [*(p for p, _ in chain), os.path.realpath(path)]
        if real in seen:
            diagnostics.append(_cycle(chain, extends, seen, real))
            return replace(decl, incomplete=True), diagnostics
        problem = _extends_problem(target, len(chain))
        if problem is not None:
            code, reason, help = problem
            diagnostics.append(
                error(
                    code,
                    f"extended spec `{shortened(written)}` {reason}",
                    extends.span,
                    help=help or relative_help(extends.span.path, target, "this spec"),
                )
            )
            return replace(decl, incomplete=True), diagnostics
        base, more = self.resolve(shown(target), (*chain, (os.path.realpath(path), extends)))
        diagnostics.extend(more)
        if base is None:
            return replace(decl, incomplete=True), diagnostics
        return _merge(base, decl), diagnostics


def _cycle(chain: tuple[Link, ...], extends: Field, seen: list[str], real: str) -> Diagnostic:
    """KVS118 for a chain that comes back to `real`, one of the specs it has `seen`."""
    links = [*(f for _, f in chain), extends][seen.index(real) :]
    names = [os.path.basename(p) for p in seen[seen.index(real) :]] + [os.path.basename(real)]
    return error(
        "KVS118",
        "`extends` cycle: " + " → ".join(names),
        links[0].span,
        labels=tuple(Label(f.span, "which extends this") for f in links[1:]),
        help="a spec cannot extend itself, directly or through others",
    )


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
    """`decl` over `base`: its own keys, blocks and `at` overrides win, key by key."""
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
