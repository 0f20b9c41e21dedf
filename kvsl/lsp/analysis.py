"""Check an open document: its unsaved text, the files it `extends` and its template.

The checker (`kvsl.lang.extends`) reads files from disk through `Session.analyze_file`.
An editor's buffers are newer than the disk, so `OverlaySession` serves open documents
from their text and everything else from disk: the same checks, the same diagnostics,
on what the user sees. Diagnostics come back grouped by the file they point into, so a
spec's errors in the base it extends, or in its Jinja2 template, reach those files too.

>>> result = analyze_document("/tmp/x.kvs", 'style "s" { contrast { pairz = 4 } }')
>>> sorted({d.code for d in result.diagnostics["/tmp/x.kvs"]})
['KVS104', 'KVS106']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kvsl.lang import sort_diagnostics
from kvsl.lang.analyze import analyze
from kvsl.lang.check import check_resolved
from kvsl.lang.checked import Decl
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.extends import Session
from kvsl.lang.parser import MAX_SPEC_BYTES, decode_source, parse_source
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.syntax import Spec


class OverlaySession(Session):
    """A checker session that reads open documents from memory (`texts`, by real path)."""

    def __init__(self, texts: dict[str, str]) -> None:
        super().__init__()
        self.texts = texts
        self.trees: dict[str, Spec | None] = {}

    def analyze_file(self, path: str) -> tuple[Decl | None, list[Diagnostic]]:
        key = os.path.realpath(path)
        text = self.texts.get(key)
        if text is None or key in self.local:
            return super().analyze_file(path)
        source, diagnostics = source_from_text(path, text)
        decl = spec = None
        if source is not None:
            spec, diagnostics = parse_source(source)
            if spec is not None:
                decl, more = analyze(spec)
                diagnostics = diagnostics + more
        self.local[key] = (decl, diagnostics, source)
        self.trees[key] = spec
        return decl, list(diagnostics)


def source_from_text(path: str, text: str) -> tuple[SourceFile | None, list[Diagnostic]]:
    """An editor buffer as a SourceFile, refused for the reasons a file on disk would be.

    The buffer goes through the same byte checks as a file (`decode_source`): a NUL is
    KVS004; a lone surrogate (which JSON can carry but UTF-8 cannot) is KVS003 at its place.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_SPEC_BYTES:
        return None, [
            Diagnostic(
                "KVS005",
                Severity.ERROR,
                f"file is too large for a spec ({len(data):,} bytes, the limit is "
                f"{MAX_SPEC_BYTES:,})",
                Span.whole_file(path),
                help="a spec is a page of settings: is this the right file?",
            )
        ]
    return decode_source(path, data)


@dataclass
class Analysis:
    """One check of one document."""

    path: str  # absolute path of the document
    text: str
    spec: Spec | None  # its syntax tree; None when it does not parse
    decl: Decl | None  # its declaration merged through `extends`; None without one
    diagnostics: dict[str, list[Diagnostic]]  # absolute path → diagnostics in that file
    dependencies: set[str] = field(default_factory=set)  # real paths of the files it read

    def file_text(self, path: str, overlays: dict[str, str] | None = None) -> str | None:
        """The text of a file a diagnostic points into (open buffer, else disk)."""
        if os.path.abspath(path) == self.path:
            return self.text
        real = os.path.realpath(path)
        if overlays and real in overlays:
            return overlays[real]
        try:
            with open(path, "rb") as handle:
                return handle.read(MAX_SPEC_BYTES + 1).decode("utf-8", errors="replace")
        except OSError:
            return None


def analyze_document(path: str, text: str, overlays: dict[str, str] | None = None) -> Analysis:
    """Every diagnostic of the spec `path` whose current text is `text`.

    `overlays` maps real paths of other open documents to their text (a base being
    edited next to the spec that extends it). Never raises for anything in the text.
    """
    path = os.path.abspath(path)
    texts = dict(overlays or {})
    texts[os.path.realpath(path)] = text
    session = OverlaySession(texts)
    decl, diagnostics = session.resolve(path)
    if decl is not None:
        _, more = check_resolved(decl, session)
        diagnostics.extend(more)
    grouped: dict[str, list[Diagnostic]] = {path: []}
    for diagnostic in sort_diagnostics(diagnostics):
        grouped.setdefault(os.path.abspath(diagnostic.span.path), []).append(diagnostic)
    dependencies = set(session.local)
    template = decl.get("teacher", "template") if decl is not None else None
    if template is not None and isinstance(template.value, str) and "\n" not in template.value:
        dependencies.add(os.path.realpath(os.path.join(template.directory, template.value)))
    return Analysis(
        path=path,
        text=text,
        spec=session.trees.get(os.path.realpath(path)),
        decl=decl,
        diagnostics=grouped,
        dependencies=dependencies,
    )
