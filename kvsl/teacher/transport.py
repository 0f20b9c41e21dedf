"""An HTTP transport for the teacher's client that bounds each attempt in time and size.

The `openai` client's `timeout` bounds each network operation, not an attempt: a server
that sends one byte every few seconds (of its headers or of its body) never trips it, and
a run meant to take `--timeout` seconds per attempt hung for as long as the server liked.
Nothing bounded the size of a reply either: a server streaming an endless body filled
memory until the process died.

`BoundedTransport` wraps the client's own transport and, per attempt (each retry and each
redirect is one), raises

- the HTTP library's `ReadTimeout` once `seconds` have passed since the request was sent,
  so the `openai` client retries it like any timeout and reports `APITimeoutError`;
- `ReplyTooLarge` (a `TransportError`) as soon as the reply declares or has sent more than
  `max_bytes`, so the client wraps it in `APIConnectionError` with it as the cause.

The HTTP library is the one the installed `openai` is built on (`httpx2` for openai 3,
`httpx` before), found from `openai.DefaultAsyncHttpxClient`; this module is imported only
when a client is made, so `kvsl --help` does not pay for it.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import openai

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a chat completion of a few thousand tokens is < 1 MiB


def http_module() -> ModuleType:
    """The HTTP library (`httpx2` or `httpx`) the installed openai client sends with."""
    client_class = next(
        c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient"
    )
    return importlib.import_module(client_class.__module__.partition(".")[0])


HTTP: Any = http_module()


class ReplyTooLarge(HTTP.TransportError):  # type: ignore[misc]
    """The reply is larger than the transport accepts (declared or sent)."""


class _BoundedStream(HTTP.AsyncByteStream):  # type: ignore[misc]
    """The body of one reply, cut off at the attempt's deadline or past `max_bytes`."""

    def __init__(self, inner: Any, request: Any, deadline: float, max_bytes: int) -> None:
        self._inner = inner
        self._request = request
        self._deadline = deadline
        self._max_bytes = max_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        chunks = self._inner.__aiter__()
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _too_slow(self._request) from None
            received += len(chunk)
            if received > self._max_bytes:
                raise _too_large(self._request, self._max_bytes)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class BoundedTransport(HTTP.AsyncBaseTransport):  # type: ignore[misc]
    """The client's own transport, each attempt limited to `seconds` and `max_bytes`."""

    def __init__(self, inner: Any, *, seconds: float, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self._inner = inner
        self._seconds = seconds
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: Any) -> Any:
        deadline = asyncio.get_running_loop().time() + self._seconds
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._inner.handle_async_request(request)
        except TimeoutError:
            raise _too_slow(request) from None
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self._max_bytes:
            await response.aclose()
            raise _too_large(request, self._max_bytes)
        return HTTP.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_BoundedStream(response.stream, request, deadline, self._max_bytes),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded_http_client(*, seconds: float, max_bytes: int = MAX_REPLY_BYTES) -> Any:
    """openai's default async HTTP client (its limits, redirects), sending through
    `BoundedTransport`, directly or through the proxy the environment names.

    A client given its own transport ignores HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY,
    so a teacher behind a proxy could not be reached at all: each proxy the HTTP library
    reads from the environment is mounted here as a bounded transport of its own (NO_PROXY's
    hosts map to None: the direct, bounded transport). ValueError: a proxy URL the HTTP
    library refuses.
    """

    def bounded(inner: Any) -> BoundedTransport:
        return BoundedTransport(inner, seconds=seconds, max_bytes=max_bytes)

    mounts = {
        pattern: None if url is None else bounded(HTTP.AsyncHTTPTransport(proxy=url))
        for pattern, url in environment_proxies().items()
    }
    return openai.DefaultAsyncHttpxClient(
        transport=bounded(HTTP.AsyncHTTPTransport()), mounts=mounts
    )


def environment_proxies() -> dict[str, str | None]:
    """The proxies the environment names, as the HTTP library itself reads them: URL
    patterns ("https://", "all://*example.com") to a proxy URL, or None for NO_PROXY's hosts."""
    utils = importlib.import_module(f"{HTTP.__name__}._utils")
    return dict(utils.get_environment_proxies())


def _too_slow(request: Any) -> Exception:
    return HTTP.ReadTimeout("the reply did not arrive whole within the timeout", request=request)


def _too_large(request: Any, max_bytes: int) -> ReplyTooLarge:
    return ReplyTooLarge(f"the reply is larger than {max_bytes // (1024 * 1024)} MiB", request=request)
