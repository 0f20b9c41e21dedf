"""A real LSP client (pygls's) driving the real `kvsl lsp` in a subprocess over stdio.

Plain module (test folders have no __init__): `from lsp_support import ...`.
`session()` starts `python -m kvsl lsp`, initializes it, and on exit sends `shutdown`
and `exit` and checks that the process ended with status 0. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0  # seconds for any one answer (a cold start on a busy machine included)

VALID = """style "tiny" {
  description = "A tiny style."
  contrast {
    traces = "traces.jsonl"
    pairs = 4
    shots = 1
  }
}
"""
TRACE = '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}\n'


class Client(LanguageClient):
    """Records published diagnostics and log messages; waits on them with a deadline."""

    def __init__(self) -> None:
        super().__init__("kvsl-tests", "1")
        self.diagnostics: dict[str, list[lsp.Diagnostic]] = {}
        self.publications: list[lsp.PublishDiagnosticsParams] = []
        self.logs: list[str] = []
        self.changed = asyncio.Event()

        @self.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params.diagnostics
            self.publications.append(params)
            self.changed.set()

        @self.feature(lsp.WINDOW_LOG_MESSAGE)
        def on_log(params: lsp.LogMessageParams) -> None:
            self.logs.append(params.message)

        @self.feature(lsp.WINDOW_SHOW_MESSAGE)
        def on_show(params: lsp.ShowMessageParams) -> None:
            self.logs.append(params.message)

    async def wait_for(
        self, uri: str, predicate: Callable[[list[lsp.Diagnostic]], bool], timeout: float = TIMEOUT
    ) -> list[lsp.Diagnostic]:
        """The first diagnostics published for `uri` (from now on, or already) that satisfy."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.diagnostics.get(uri)
            if found is not None and predicate(found):
                return found
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no matching diagnostics for {uri}: {found!r}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    # --- documents -----------------------------------------------------------------

    def open(self, path: Path, text: str | None = None, version: int = 1) -> str:
        uri = from_fs_path(str(path))
        self.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                lsp.TextDocumentItem(
                    uri=uri,
                    language_id="kvs",
                    version=version,
                    text=path.read_text(encoding="utf-8") if text is None else text,
                )
            )
        )
        return uri

    def replace(self, uri: str, text: str, version: int) -> None:
        """A full-text change (the client may always send one)."""
        self.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def edit(
        self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str
    ) -> None:
        """An incremental change of the range start..end (0-based line, UTF-16 char)."""
        self.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(lsp.Position(*start), lsp.Position(*end)), text=text
                    )
                ],
            )
        )

    async def request(self, method: str, params: Any) -> Any:
        return await asyncio.wait_for(self.protocol.send_request_async(method, params), TIMEOUT)

    async def hover(self, uri: str, line: int, character: int) -> lsp.Hover | None:
        return await self.request(
            lsp.TEXT_DOCUMENT_HOVER,
            lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(line, character)),
        )


def server_command() -> list[str]:
    return [sys.executable, "-m", "kvsl", "lsp", "--debounce-ms", "5"]


def server_env(cache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if cache is not None:  # explanations are written here, not into the user's cache
        env["KVSL_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@contextlib.asynccontextmanager
async def session(root: Path, *, encodings: list[str] | None = None) -> AsyncIterator[Client]:
    """An initialized client talking to a fresh `kvsl lsp`; shut down cleanly on exit."""
    client = Client()
    command = server_command()
    await client.start_io(*command, env=server_env(root / ".cache"), cwd=str(root))
    capabilities = lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(position_encodings=encodings) if encodings else None,
        text_document=lsp.TextDocumentClientCapabilities(
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(related_information=True),
        ),
    )
    result = await asyncio.wait_for(
        client.initialize_async(
            lsp.InitializeParams(
                capabilities=capabilities, root_uri=from_fs_path(str(root)), process_id=os.getpid()
            )
        ),
        TIMEOUT,
    )
    client.initialized(lsp.InitializedParams())
    client.server_info = result.server_info  # type: ignore[attr-defined]
    client.capabilities = result.capabilities  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        process = client._server
        try:
            await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
            client.exit(None)
            assert process is not None
            code = await asyncio.wait_for(process.wait(), TIMEOUT)
        finally:
            if process is not None and process.returncode is None:
                process.kill()
            await asyncio.wait_for(client.stop(), TIMEOUT)
        assert code == 0, f"server exited with {code}"


def run(coroutine: Any) -> Any:
    """Run one test scenario (each test starts its own server)."""
    return asyncio.run(asyncio.wait_for(coroutine, 120))


def write_spec(folder: Path, text: str = VALID, name: str = "tiny.kvs") -> Path:
    (folder / "traces.jsonl").write_text(TRACE, encoding="utf-8")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
