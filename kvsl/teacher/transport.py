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

A compressed reply is bounded as it is decoded, not only as it arrives: the HTTP library
decodes a `Content-Encoding` after the transport, whole and unbounded, so 300 KB of gzip
from a hostile server became 300 MiB in memory (16 MiB of it, 16 GiB). The transport asks
for `gzip, deflate` only, decodes them itself (at most `max_bytes` out, `ReplyTooLarge`
past it) and hands the client the plain body; any other encoding is a `DecodingError`,
as a body that is not the gzip it claims is.

The HTTP library is the one the installed `openai` is built on (`httpx2` for openai 3,
`httpx` before), found from `openai.DefaultAsyncHttpxClient`; this module is imported only
when a client is made, so `kvsl --help` does not pay for it.
"""

from __future__ import annotations

import asyncio
import importlib
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
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


# What the transport decodes itself, bounded, and the zlib window that reads each.
_DECODED = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPTED_ENCODINGS = "gzip, deflate"


class _BoundedDecoder:
    """A `Content-Encoding` decoded with at most `room` bytes out (`ReplyTooLarge` past it)."""

    def __init__(self, encoding: str, request: Any, room: int) -> None:
        if encoding not in _DECODED:
            raise HTTP.DecodingError(
                f"the reply's Content-Encoding `{encoding}` was not asked for", request=request
            )
        self._zlib = zlib.decompressobj(_DECODED[encoding])
        # "deflate" is zlib-wrapped by the standard, but some servers send it raw; the HTTP
        # library reads both, so the first bytes decide, as a zlib header is recognisable.
        self._may_be_raw = encoding == "deflate"
        self._request = request
        self._room = room
        self._max_bytes = room

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._may_be_raw and data:
            self._may_be_raw = False
            if not _zlib_header(data):
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        while data:  # at most room + 1 bytes a step: one past the room is too large
            yield self._checked(self._zlib.decompress, data, self._room + 1)
            data = self._zlib.unconsumed_tail

    def flush(self) -> bytes:
        return self._checked(self._zlib.flush, self._room + 1)

    def _checked(self, step: Callable[..., bytes], *args: Any) -> bytes:
        try:
            out = step(*args)
        except zlib.error as err:
            raise HTTP.DecodingError(
                f"the reply could not be decoded: {err}", request=self._request
            ) from None
        self._room -= len(out)
        if self._room < 0:
            raise _too_large(self._request, self._max_bytes)
        return out


def _zlib_header(data: bytes) -> bool:
    """Whether `data` opens with a zlib header (RFC 1950: method 8, a check over 31), or is
    too short to tell (then read as zlib, the standard's form)."""
    if len(data) < 2:
        return True
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _BoundedStream(HTTP.AsyncByteStream):  # type: ignore[misc]
    """The body of one reply, cut off at the attempt's deadline or past `max_bytes` (as
    received, and as decoded when `decoder` undoes its Content-Encoding)."""

    def __init__(
        self,
        inner: Any,
        request: Any,
        deadline: float,
        max_bytes: int,
        decoder: _BoundedDecoder | None = None,
    ) -> None:
        self._inner = inner
        self._request = request
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._decoder = decoder

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        chunks = self._inner.__aiter__()
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                if self._decoder is not None:
                    yield self._decoder.flush()
                return
            except TimeoutError:
                raise _too_slow(self._request) from None
            received += len(chunk)
            if received > self._max_bytes:
                raise _too_large(self._request, self._max_bytes)
            if self._decoder is None:
                yield chunk
            else:
                for out in self._decoder.decode(chunk):
                    yield out

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
        request.headers["Accept-Encoding"] = ACCEPTED_ENCODINGS  # the ones decoded bounded
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._inner.handle_async_request(request)
        except TimeoutError:
            raise _too_slow(request) from None
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self._max_bytes:
            await response.aclose()
            raise _too_large(request, self._max_bytes)
        headers = response.headers
        decoder = None
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            try:
                decoder = _BoundedDecoder(encoding, request, self._max_bytes)
            except HTTP.DecodingError:
                await response.aclose()
                raise
            # handed on decoded: the client must not decode it again (nor check its length)
            headers = HTTP.Headers(
                [(k, v) for k, v in headers.multi_items()
                 if k.lower() not in ("content-encoding", "content-length")]
            )  # fmt: skip
        return HTTP.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_BoundedStream(response.stream, request, deadline, self._max_bytes, decoder),
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
