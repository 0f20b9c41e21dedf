"""The kvsl language server: pygls handlers over the front end's functions.

Diagnostics are published on open and save at once, and after an edit once the user has
paused for `debounce` seconds (a newer edit cancels the pending check). A check covers the
spec with its `extends` chain and its template, and publishes into each of those files;
what a spec once published into another file is withdrawn when it no longer applies.

Every handler runs under `guarded`: an exception in kvsl's code is logged to the client
(`window/logMessage`) and the request answers its empty result, so no edit, however
broken, stops the server. The checker never raises for bad input; this is for bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.exceptions import FeatureRequestError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path
from pygls.workspace import TextDocument

from kvsl import __version__
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lsp import DEFAULT_DEBOUNCE_MS
from kvsl.lsp.analysis import Analysis, analyze_document
from kvsl.lsp.explain import explain_markdown, explain_uri
from kvsl.lsp.features import (
    Fix,
    Symbol,
    completions,
    definition,
    fixes,
    formatted,
    hover,
    outline,
)
from kvsl.lsp.framing import FrameReader
from kvsl.lsp.highlight import TOKEN_MODIFIERS, TOKEN_TYPES, encode, semantic_tokens
from kvsl.lsp.positions import LineIndex, span_range
from kvsl.lsp.protocol import KvslProtocol

EXPLAIN_COMMAND = "kvsl.explain"
_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.NOTE: lsp.DiagnosticSeverity.Information,
}
logger = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Any])


class NotOpen(LookupError):
    """A request or notification names a document the client has not opened."""


class KvslLanguageServer(LanguageServer):
    """pygls's server plus what kvsl keeps per open document."""

    protocol: KvslProtocol

    def __init__(self, debounce: float = DEFAULT_DEBOUNCE_MS / 1000) -> None:
        super().__init__("kvsl", __version__, protocol_cls=KvslProtocol)
        self.debounce = debounce
        self.analyses: dict[str, Analysis] = {}  # uri → latest check
        self.fixes: dict[str, list[tuple[lsp.Diagnostic, Fix]]] = {}  # uri → quick fixes
        self.pending: dict[str, asyncio.Task[None]] = {}  # uri → debounced check
        # target uri → source uri → the diagnostics that source's check put there
        self.published: dict[str, dict[str, list[lsp.Diagnostic]]] = {}

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve stdin/stdout as pygls does, but through kvsl's framing (see framing.py)."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(self._serve(FrameReader(stdin or sys.stdin.buffer)))
        except BrokenPipeError:
            logger.error("the client closed the connection; the server stops")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    async def _serve(self, frames: FrameReader) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop_event is not None
        while not self._stop_event.is_set():
            frame = await loop.run_in_executor(self.thread_pool, frames.next)
            if frame is None:
                break
            if not self.protocol.receive(frame) and isinstance(frame, bytes):
                frames.resync(frame)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """An error out of any request's reach goes to the client's log, not a pop-up:
        pygls showed "Error in server" to the user for what is the client's slip."""
        logger.error("%s", error)
        if source is FeatureRequestError:
            return  # the request was answered with this error
        with contextlib.suppress(Exception):
            self.window_log_message(
                lsp.LogMessageParams(type=lsp.MessageType.Error, message=f"kvsl lsp: {error}")
            )

    # --- documents ---------------------------------------------------------------------

    def document(self, uri: str) -> TextDocument:
        """The open document `uri` (NotOpen for one the client has not opened: pygls would
        read it from disk, or fail on a URI that is not a file)."""
        doc = self.workspace.text_documents.get(unquote(uri))  # pygls's key: `My%20Specs` unquoted
        if doc is None:
            raise NotOpen(uri)
        return doc

    def units(self, text: str) -> int:
        return self.workspace.position_codec.client_num_units(text)

    def overlays(self) -> dict[str, str]:
        """Real path → text of every open `.kvs` document."""
        return {
            os.path.realpath(doc.path): doc.source
            for doc in self.workspace.text_documents.values()
            if doc.path.endswith(".kvs")
        }

    def current(self, uri: str) -> Analysis:
        """The analysis of the document's present text (checked again if it changed)."""
        doc = self.document(uri)
        found = self.analyses.get(uri)
        if found is None or found.text != doc.source:
            with collector_paused():
                found = analyze_document(doc.path, doc.source, self.overlays())
        return found

    def check_now(self, uri: str) -> None:
        """Check one document and publish into every file its diagnostics point at."""
        # the collector's turn comes after the diagnostics are on their way
        with collector_paused():
            self._check(uri)

    def _check(self, uri: str) -> None:
        doc = self.document(uri)
        analysis = analyze_document(doc.path, doc.source, self.overlays())
        self.analyses[uri] = analysis
        indexes: dict[str, LineIndex | None] = {}

        def index_of(path: str) -> LineIndex | None:
            path = os.path.abspath(path)
            if path not in indexes:
                text = analysis.file_text(path, None)
                indexes[path] = None if text is None else LineIndex(text, self.units)
            return indexes[path]

        converted: dict[str, list[lsp.Diagnostic]] = {}
        by_identity: dict[int, lsp.Diagnostic] = {}
        for path, found in analysis.diagnostics.items():
            target = from_fs_path(path) if path != analysis.path else uri
            converted[target] = []
            for d in found:
                item = self.to_lsp(d, index_of)
                converted[target].append(item)
                by_identity[id(d)] = item
        self.fixes[uri] = [(by_identity[id(f.diagnostic)], f) for f in fixes(analysis)]
        self.publish(uri, converted, doc.version)

    def publish(
        self, source: str, found: dict[str, list[lsp.Diagnostic]], version: int | None
    ) -> None:
        touched = set(found)
        for target, sources in self.published.items():
            if source in sources and target not in found:
                del sources[source]
                touched.add(target)
        for target, items in found.items():
            self.published.setdefault(target, {})[source] = items
        for target in sorted(touched):
            merged: dict[tuple[object, ...], lsp.Diagnostic] = {}
            for items in self.published.get(target, {}).values():
                for item in items:
                    key = (
                        item.range.start.line,
                        item.range.start.character,
                        item.code,
                        item.message,
                    )
                    merged.setdefault(key, item)
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=target,
                    diagnostics=list(merged.values()),
                    version=version if target == source else None,
                )
            )

    def forget(self, uri: str) -> None:
        """A closed document: drop its state and withdraw what it published elsewhere."""
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.analyses.pop(uri, None)
        self.fixes.pop(uri, None)
        # Withdraw its diagnostics everywhere; its own file keeps what other open specs
        # (that extend it) say about it.
        self.publish(uri, {}, None)

    def schedule(self, uri: str) -> None:
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._check_later(uri))

    async def _check_later(self, uri: str) -> None:
        await asyncio.sleep(self.debounce)
        self.pending.pop(uri, None)
        try:
            self.check_now(uri)
        except NotOpen:
            return  # closed while waiting
        except Exception:  # a bug in kvsl must not end the server
            self.log_error(f"checking {uri}")

    def dependents(self, uri: str) -> list[str]:
        """Other open documents whose last check read this one (they extend it)."""
        real = os.path.realpath(self.document(uri).path)
        return [
            other
            for other, analysis in self.analyses.items()
            if other != uri and real in analysis.dependencies
        ]

    def to_lsp(self, d: Diagnostic, index_of: Callable[[str], LineIndex | None]) -> lsp.Diagnostic:
        related = [
            lsp.DiagnosticRelatedInformation(
                location=lsp.Location(
                    uri=from_fs_path(os.path.abspath(label.span.path)),
                    range=self.range_of(label.span, index_of),
                ),
                message=label.message,
            )
            for label in d.labels
        ]
        href = explain_uri(d.code)
        return lsp.Diagnostic(
            range=self.range_of(d.span, index_of),
            severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Error),
            code=d.code,
            code_description=lsp.CodeDescription(href=href) if href else None,
            source="kvsl",
            message=d.message + (f"\nhelp: {d.help}" if d.help else ""),
            related_information=related or None,
            data={"code": d.code, "explain": f"kvsl explain {d.code}"},
        )

    def range_of(self, span: Any, index_of: Callable[[str], LineIndex | None]) -> lsp.Range:
        index = index_of(span.path)
        start, end = span_range(span, index.line_text if index else None, self.units)
        return lsp.Range(lsp.Position(*start), lsp.Position(*end))

    def log_error(self, what: str) -> None:
        text = f"kvsl lsp: internal error while {what}:\n{traceback.format_exc()}"
        logger.error(text)
        try:
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=text))
        except Exception:
            logger.exception("cannot report an internal error to the client")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for one check.

    A check of a 2,000-line spec allocates some 40,000 objects (tokens, spans, tree
    nodes, declarations), and the collector, triggered every 700 allocations, walks the
    young ones again and again and promotes the tree to be walked in full collections:
    a third of the check's time. The tree has no cycles, so reference counting frees the
    previous one; the collector runs again once the diagnostics are sent.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def guarded(default: Any = None) -> Callable[[Handler], Handler]:
    """Run a handler so that a bug answers `default` and is logged, never raised."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(ls: KvslLanguageServer, params: Any) -> Any:
            try:
                return handler(ls, params)
            except NotOpen as err:  # the client's slip, not a kvsl bug: nothing to answer
                logger.debug("%s on a document that is not open: %s", handler.__name__, err)
                return default
            except Exception:
                ls.log_error(handler.__name__)
                return default

        return run  # type: ignore[return-value]

    return wrap


def create_server(debounce: float = DEFAULT_DEBOUNCE_MS / 1000) -> KvslLanguageServer:
    """A server with every kvsl feature registered (not yet started)."""
    server = KvslLanguageServer(debounce)
    for name, options, handler in _FEATURES:
        server.feature(name, options)(handler)
    server.command(EXPLAIN_COMMAND)(on_explain)
    return server


# ---- the handlers: each registered by `create_server` on a new server ----------------------

_FEATURES: list[tuple[str, Any, Callable[..., Any]]] = []


def _feature(name: str, options: Any = None) -> Callable[[Handler], Handler]:
    """Record a handler of the LSP method `name` (with its server options) for create_server."""

    def record(handler: Handler) -> Handler:
        _FEATURES.append((name, options, handler))
        return handler

    return record



@_feature(lsp.TEXT_DOCUMENT_DID_OPEN)
@guarded()
def did_open(ls: KvslLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.check_now(params.text_document.uri)

@_feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
@guarded()
def did_change(ls: KvslLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.schedule(uri)
    for other in ls.dependents(uri):
        ls.schedule(other)

@_feature(lsp.TEXT_DOCUMENT_DID_SAVE)
@guarded()
def did_save(ls: KvslLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.check_now(params.text_document.uri)

@_feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
@guarded()
def did_close(ls: KvslLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.forget(params.text_document.uri)

@_feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
@guarded()
def files_changed(ls: KvslLanguageServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    # A base, template or trace file changed on disk (`kvsl teach` wrote the traces,
    # a branch switch): check the open specs again.
    for uri in list(ls.analyses):
        ls.schedule(uri)

@_feature(lsp.TEXT_DOCUMENT_HOVER)
@guarded()
def on_hover(ls: KvslLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    uri = params.text_document.uri
    analysis = ls.current(uri)
    index = LineIndex(analysis.text, ls.units)
    offset = index.offset(params.position.line, params.position.character)
    parts: list[str] = []
    found = hover(analysis, offset)
    start = end = offset
    if found is not None:
        parts.append(found[0])
        start, end = found[1], found[2]
    for d in analysis.diagnostics.get(analysis.path, []):
        if d.span.start <= offset <= max(d.span.end, d.span.start + 1):
            explained = explain_markdown(d.code)
            if explained:
                parts.append(explained.replace("# ", "### ", 1))
                if found is None:
                    start, end = d.span.start, d.span.end
    if not parts:
        return None
    return lsp.Hover(
        contents=lsp.MarkupContent(
            kind=lsp.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)
        ),
        range=lsp.Range(
            lsp.Position(*index.position(start)), lsp.Position(*index.position(end))
        ),
    )

@_feature(
    lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=['"', "/", "=", " "])
)
@guarded(default=[])
def on_completion(
    ls: KvslLanguageServer, params: lsp.CompletionParams
) -> list[lsp.CompletionItem]:
    doc = ls.document(params.text_document.uri)
    text = doc.source
    offset = LineIndex(text, ls.units).offset(params.position.line, params.position.character)
    return completions(text, offset, doc.path)

@_feature(lsp.TEXT_DOCUMENT_DEFINITION)
@guarded()
def on_definition(ls: KvslLanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    analysis = ls.current(params.text_document.uri)
    index = LineIndex(analysis.text, ls.units)
    path = definition(analysis, index.offset(params.position.line, params.position.character))
    if path is None:
        return None
    start = lsp.Position(0, 0)
    return lsp.Location(uri=from_fs_path(path), range=lsp.Range(start, start))

@_feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded(default=[])
def on_symbols(
    ls: KvslLanguageServer, params: lsp.DocumentSymbolParams
) -> list[lsp.DocumentSymbol]:
    analysis = ls.current(params.text_document.uri)
    index = LineIndex(analysis.text, ls.units)

    def convert(found: Symbol) -> lsp.DocumentSymbol:
        def span(offsets: tuple[int, int]) -> lsp.Range:
            return lsp.Range(
                lsp.Position(*index.position(offsets[0])),
                lsp.Position(*index.position(offsets[1])),
            )

        return lsp.DocumentSymbol(
            name=found.name,
            detail=found.detail or None,
            kind=lsp.SymbolKind.Namespace if found.block else lsp.SymbolKind.Property,
            range=span(found.span),
            selection_range=span(found.name_span),
            children=[convert(child) for child in found.children] or None,
        )

    return [convert(found) for found in outline(analysis.spec, analysis.text)]

@_feature(lsp.TEXT_DOCUMENT_FORMATTING)
@guarded(default=[])
def on_formatting(
    ls: KvslLanguageServer, params: lsp.DocumentFormattingParams
) -> list[lsp.TextEdit]:
    doc = ls.document(params.text_document.uri)
    text = doc.source
    result = formatted(text, doc.path)
    if result is None:
        ls.window_log_message(
            lsp.LogMessageParams(
                type=lsp.MessageType.Info,
                message=f"kvsl fmt: {doc.filename} has syntax errors; not formatted",
            )
        )
        return []
    if result == text:
        return []
    index = LineIndex(text, ls.units)
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(*index.position(len(text))))
    return [lsp.TextEdit(range=whole, new_text=result)]

@_feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION,
    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
)
@guarded(default=[])
def on_code_action(
    ls: KvslLanguageServer, params: lsp.CodeActionParams
) -> list[lsp.CodeAction]:
    uri = params.text_document.uri
    if (
        uri not in ls.analyses
        or ls.analyses[uri].text != ls.document(uri).source
    ):
        ls.check_now(uri)
    index = LineIndex(ls.analyses[uri].text, ls.units)
    wanted = params.range
    actions = []
    for item, fix in ls.fixes.get(uri, []):
        if _before(item.range.end, wanted.start) or _before(wanted.end, item.range.start):
            continue
        edit = lsp.TextEdit(
            range=lsp.Range(
                lsp.Position(*index.position(fix.start)), lsp.Position(*index.position(fix.end))
            ),
            new_text=fix.new_text,
        )
        actions.append(
            lsp.CodeAction(
                title=fix.title,
                kind=lsp.CodeActionKind.QuickFix,
                diagnostics=[item],
                edit=lsp.WorkspaceEdit(changes={uri: [edit]}),
                is_preferred=True,
            )
        )
    return actions

@_feature(
    lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
    lsp.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS),
)
@guarded(default=lsp.SemanticTokens(data=[]))
def on_semantic_tokens(
    ls: KvslLanguageServer, params: lsp.SemanticTokensParams
) -> lsp.SemanticTokens:
    doc = ls.document(params.text_document.uri)
    return lsp.SemanticTokens(data=encode(semantic_tokens(doc.source, ls.units)))

def on_explain(ls: KvslLanguageServer, *arguments: object) -> str | None:
    """`kvsl explain CODE` as Markdown (the target of a diagnostic's code link)."""
    try:
        return explain_markdown(str(arguments[0]).strip().upper()) if arguments else None
    except Exception:
        ls.log_error(EXPLAIN_COMMAND)
        return None


def _before(a: lsp.Position, b: lsp.Position) -> bool:
    return (a.line, a.character) < (b.line, b.character)


def serve(debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> int:
    """Run the server on stdin/stdout until the client says `exit`."""
    server = create_server(debounce_ms / 1000)
    # What is imported by now lives as long as the server: out of the collector's sight,
    # so that its full collections walk only what the checks leave behind.
    gc.freeze()
    server.start_io()
    return 0
