"""kvsl's JSON-RPC protocol over pygls's: what a client sends that pygls mishandled.

Each override answers as JSON-RPC says where pygls showed the user an "Error in server"
pop-up, never answered, or kept memory per notification; the framing of messages on the
stream is kvsl/lsp/framing.py's.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from kvsl.base.jsonl import loads
from kvsl.lsp.framing import Garbled

logger = logging.getLogger(__name__)


class _Answered:
    """A request already answered with an error: not JSON-RPC 2.0, so pygls drops it."""

    jsonrpc = "answered"


class KvslProtocol(LanguageServerProtocol):
    """pygls's protocol, without its per-notification memory growth.

    pygls 2.1 files the future of every notification handled by a generator, coroutine or
    thread (`didOpen`, `didChange`, ... are generators) in `_request_futures` under a fresh
    uuid and never removes it, since only responses to requests pop that table: about
    1.5 KiB per keystroke, 15 MiB over 10,000 edits (bench/lsp_bench.py). Removing the
    entry once the notification's handler is done keeps the server's memory flat.
    """

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: Any = None,
        kwargs: Any = None,
    ) -> None:
        if callback == self._check_handler_result:  # a notification, not a request
            notification_done = callback

            def callback(future: Any) -> None:
                self._request_futures.pop(msg_id, None)
                notification_done(future)

        super()._execute_handler(msg_id, handler, callback, args, kwargs)

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams) -> Any:
        """pygls's, for an open document; a change to one that is not open is ignored (pygls
        raised KeyError into an "Error in server" pop-up in the editor)."""
        if unquote(params.text_document.uri) not in self.workspace.text_documents:
            logger.debug("change to a document that is not open: %s", params.text_document.uri)
            return
        yield from super().lsp_text_document__did_change(params)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """pygls's, except that a request whose params do not fit its method (a hover
        without a position, a negative line) is answered with JSON-RPC's error (-32602,
        invalid params): pygls showed the user an "Error in server" pop-up and never
        answered, so the client waited on the request for ever."""
        if "method" in data and "params" not in data:
            data = {**data, "params": None}  # JSON-RPC may omit params; pygls's types need it
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "id" not in data or "method" not in data:
                raise  # a notification or a response: no one waits for an answer
            self._send_response(data["id"], error=error.to_response_error())
            return _Answered()

    def receive(self, frame: bytes | Garbled) -> bool:
        """Handle one frame; False when it was not a message (answered as JSON-RPC says).

        pygls's loop sent what it could not read to the editor as an "Error in server"
        pop-up and answered nothing; JSON-RPC answers a body that is not JSON with a parse
        error (-32700) and one that is not a JSON-RPC 2.0 request with an invalid-request
        error (-32600), with id null when the id cannot be read.
        """
        if isinstance(frame, Garbled):
            self._refuse(None, JsonRpcParseError(frame.reason))
            return False
        try:
            message = loads(frame, unicode_only=False, object_hook=self.structure_message)
        except ValueError as error:  # not JSON, or not UTF-8
            self._refuse(None, JsonRpcParseError(f"the message is not JSON: {error}"))
            return False
        except JsonRpcException:  # a notification whose params do not fit: no one to answer
            logger.warning("notification with params that do not fit its method dropped")
            return True
        if isinstance(message, _Answered):
            return True
        if getattr(message, "jsonrpc", None) != self.VERSION:
            found = message.get("id") if isinstance(message, dict) else getattr(message, "id", None)
            msg_id = found if isinstance(found, (int, str)) and not isinstance(found, bool) else None
            self._refuse(msg_id, JsonRpcInvalidRequest("not a JSON-RPC 2.0 message object"))
            return True
        try:
            self.handle_message(message)
        except Exception:  # pygls's own dispatch failed: log it; the next message is served
            logger.exception("cannot handle a message")
        return True

    def _refuse(self, msg_id: int | str | None, error: JsonRpcException) -> None:
        # By hand: pygls's response leaves out an id of None, and JSON-RPC wants `"id": null`.
        reply = {"code": error.code, "message": error.message}
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "error": reply})
