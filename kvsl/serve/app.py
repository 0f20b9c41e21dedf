"""The OpenAI-compatible HTTP app (Starlette): routes, limits, errors, streaming.

    POST /v1/chat/completions   chat, streaming (SSE) or not
    POST /v1/completions        raw-text prompts, streaming or not
    GET  /v1/models             the model and one id per style, `MODEL:STYLE`
    GET  /health                liveness and the slots in use (no API key needed)
    GET  /metrics               Prometheus text

Every error is an OpenAI-shaped JSON body (`{"error": {...}}`) with its status: 400 bad
request, 401 API key, 404 unknown model or route, 408 request head or
body too slow (`--request-timeout`), 413 body too large, 429 queue full (with
Retry-After), 503 shutting down, 500 anything unexpected (the server stays up).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kvsl.base.counts import decimal_count
from kvsl.base.plurals import counted, plural
from kvsl.engine.generate import GenerationSettings
from kvsl.engine.rows import Row
from kvsl.serve.batcher import SHUTDOWN_MESSAGE, Batcher, Busy, Job, Sampling, ShuttingDown
from kvsl.serve.catalog import Catalog
from kvsl.serve.continuous import ContinuousBatcher
from kvsl.serve.metrics import Metrics
from kvsl.serve.schemas import ApiError, Generation, Limits, parse_body, parse_generation, shown


@dataclass(frozen=True)
class ServerConfig:
    """Server-wide settings (the `kvsl serve` options)."""

    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    max_batch: int = 16
    max_queue: int = 64
    gather_ms: float = 5.0
    max_body_bytes: int = 1_000_000
    # A body still unfinished after that: 408; a stream's client that takes no chunk for that
    # long: the connection closes (`--request-timeout`; stalled clients hold nothing for ever).
    body_timeout_s: float = 30.0
    batching: str = "continuous"  # or "dynamic" (`kvsl.serve.batcher`)


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _authorize(request: Request, key: str | None) -> None:
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # Constant-time comparison; the key is never logged or echoed.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(401, "invalid or missing API key (send `Authorization: Bearer KEY`)",
                       type="authentication_error", code="invalid_api_key")


# Answers sent before the body is read whole close the connection: what is left of the
# body would otherwise be read as the next request (or the client waits on a kept-alive one).
_CLOSE = {"Connection": "close"}


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, at most `limit` bytes (413, refused before reading when declared larger),
    whole within `timeout` seconds (408: a client that declares more than it sends, then
    stalls, would hold its connection and a coroutine for ever)."""
    declared = request.headers.get("content-length", "")
    too_large = ApiError(413, f"the request body is larger than {counted(limit, 'byte')}",
                         code="request_too_large", headers=_CLOSE)
    length = decimal_count(declared)
    if length is not None and length > limit:
        raise too_large

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), timeout)
    except ClientDisconnect:  # it left mid-body: nobody reads the answer (no traceback logged)
        raise ApiError(499, "the client closed the connection before its body was read",
                       code="client_closed") from None
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} "
                       f"{plural(timeout, 'second')}",
                       code="request_timeout", headers=_CLOSE) from None


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _EventStream(StreamingResponse):
    """Server-sent events that notice a client leaving at once, on any ASGI server.

    The body and a disconnect listener run side by side; whichever ends first ends the
    other, and `on_close` runs in every case (it frees the request's slot).
    """

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None],
                 send_timeout: float) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.on_close = on_close
        self.send_timeout = send_timeout

    async def __call__(self, scope: Any, receive: Any, original_send: Any) -> None:
        import anyio

        async def send(message: Any) -> None:
            # A client that stops reading (its window full, the socket open) blocked this send
            # for ever: the connection and this task stayed, and with them what is left of the
            # answer. Past the deadline it counts as gone; uvicorn then closes the connection.
            try:
                await asyncio.wait_for(original_send(message), self.send_timeout)
            except TimeoutError:
                raise OSError("the client stopped reading its stream") from None

        try:
            async with anyio.create_task_group() as group:

                async def body() -> None:
                    with contextlib.suppress(OSError):
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(body)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            self.on_close()


def _finish_reason(row: Row) -> str:
    return "length" if row.finish_reason == "length" else "stop"


def _usage(gen: Generation, rows: list[Row]) -> dict[str, int]:
    completion = sum(len(row.tokens) for row in rows)
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": completion,
            "total_tokens": gen.prompt_tokens + completion}


class _Server:
    """The handlers, around one catalog, batcher and metrics."""

    def __init__(
        self, catalog: Catalog, config: ServerConfig, run_rows: Callable[..., Any] | None,
        decoder: Any, worker_tokenizer: Any, executor: Any = None,
    ) -> None:
        self.catalog = catalog
        self.executor = executor  # the model thread (None: the batcher starts one)
        self.config = config
        self.metrics = Metrics()
        self.run_rows = run_rows
        self.decoder = decoder
        self.worker_tokenizer = worker_tokenizer  # the model thread's own copy
        self.batcher: Batcher | None = None
        self.started = int(time.time())
        self.stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def tokenizer(self) -> Any:
        return self.catalog.loaded.tokenizer

    async def startup(self) -> None:
        options: dict[str, Any] = dict(
            worker_tokenizer=self.worker_tokenizer, max_batch=self.config.max_batch,
            max_queue=self.config.max_queue, gather_s=self.config.gather_ms / 1000,
            metrics=self.metrics, executor=self.executor,
        )
        if self.run_rows is not None:
            self.batcher = Batcher(self.run_rows, self.tokenizer, **options)
        else:
            self.batcher = ContinuousBatcher(self.decoder, self.tokenizer, **options)
        self.batcher.start()
        self._loop = asyncio.get_running_loop()

    def drain(self, seconds: float) -> None:
        """The server is stopping (SIGTERM, Ctrl-C): requests in flight get `seconds` more;
        then each one left ends with a 503 `shutting_down` (a stream with that error event
        and `[DONE]`) and its rows leave the model.

        Left to uvicorn, a request past `--shutdown-timeout` had its task cancelled: a
        stream stopped in the middle of its chunked body, a non-streaming client got a
        plain-text 500, and the log a traceback. Called from the server's shutdown and
        from a signal handler (a second signal: `seconds` 0), on the loop's thread.
        """
        self.stopping = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing in flight
            loop.call_soon_threadsafe(loop.call_later, max(0.0, seconds), self._end_in_flight)

    def _end_in_flight(self) -> None:
        if self.batcher is None:
            return
        for job in list(self.batcher.in_flight):
            job.abort(ShuttingDown(f"{SHUTDOWN_MESSAGE}: the request did not finish in time"))

    async def shutdown(self) -> None:
        self.stopping = True
        if self.batcher is not None:
            await self.batcher.stop()

    # --- routes -------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        batcher = self.batcher
        return JSONResponse({
            "status": "stopping" if self.stopping else "ok",
            "model": self.catalog.model_id,
            "styles": list(self.catalog.styles),
            "in_flight": len(batcher.in_flight) if batcher else 0,
            "queued": sum(1 for j in batcher.pending if not j.finished) if batcher else 0,
            "running_rows": batcher.running_rows if batcher else 0,
            "batches": batcher.batches if batcher else 0,
            "batching": "continuous" if isinstance(batcher, ContinuousBatcher) else "dynamic",
        })

    async def models(self, request: Request) -> Response:
        try:
            _authorize(request, self.config.api_key)
        except ApiError as err:
            return _error(err)
        return JSONResponse({"object": "list", "data": [self._model(m) for m in self.catalog.model_ids()]})

    def _model(self, model_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": model_id, "object": "model", "created": self.started,
                                 "owned_by": "kvsl"}
        _, _, style = model_id.partition(":")
        if style:
            plan = self.catalog.styles[style].plan
            entry["kvsl"] = {"style": style, "description": plan.description,
                             "key": plan.steer.key, "value": plan.steer.value}
        return entry

    async def model(self, request: Request) -> Response:
        try:
            _authorize(request, self.config.api_key)
            model_id = request.path_params["model"]
            if model_id not in self.catalog.model_ids():
                raise ApiError(404, f"the model `{shown(model_id)}` does not exist", param="model",
                               code="model_not_found")
        except ApiError as err:
            return _error(err)
        return JSONResponse(self._model(model_id))

    async def prometheus(self, request: Request) -> Response:
        try:
            _authorize(request, self.config.api_key)
        except ApiError as err:
            return _error(err)
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, "completion")

    # --- generation ---------------------------------------------------------------------

    def _admit(self, gen: Generation) -> Job:
        assert self.batcher is not None
        sampling = Sampling(gen.sample, gen.temperature, gen.top_p, gen.seed, gen.controls)
        # Continuous batching decodes each row with its own settings (dynamic batching with
        # the batch's): the `n` rows of a sampled request share one seeded generator.
        seed = gen.seed if gen.seed is not None else random.randrange(2**31)
        controls: dict[str, Any] = dict(gen.controls)
        settings = GenerationSettings(sample=gen.sample, temperature=gen.temperature,
                                      top_p=gen.top_p, seed=seed, **controls)
        rng = None
        if gen.sample and isinstance(self.batcher, ContinuousBatcher):
            from kvsl.engine.continuous import row_generator

            rng = row_generator(seed, self.catalog.loaded.model.device)
        rows = [Row(gen.prompt, gen.offset_id, gen.edit, gen.max_tokens, gen.stop,
                    settings=settings, rng=rng) for _ in range(gen.n)]
        job = Job(rows, sampling, stream=gen.stream)
        try:
            self.batcher.submit(job)
        except Busy as busy:
            raise ApiError(429, "the server is busy: its queue is full; retry later",
                           type="rate_limit_error", code="server_busy",
                           headers={"Retry-After": str(busy.retry_after)}) from None
        except ShuttingDown as stopping:
            raise _shutting_down(stopping) from None
        return job

    async def _generate(self, request: Request, kind: str) -> Response:
        endpoint = request.url.path
        started = time.perf_counter()
        try:
            _authorize(request, self.config.api_key)
            raw = await _read_body(request, self.config.max_body_bytes, self.config.body_timeout_s)
            gen = parse_generation(parse_body(raw), kind, self.catalog, self.config.limits)
            job = self._admit(gen)
        except ApiError as err:
            self.metrics.count(endpoint, err.status)
            return _error(err)
        if gen.stream:
            self.metrics.count(endpoint, 200)

            def closed() -> None:
                if not job.finished:
                    self.metrics.disconnects.inc()
                    job.cancel()

            return _EventStream(self._events(job, gen, endpoint, started), on_close=closed,
                                send_timeout=self.config.body_timeout_s)
        waiter: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait([job.result, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not job.finished:  # the client left: free the slot, nobody reads the answer
            self.metrics.disconnects.inc()
            job.cancel()
            return Response(status_code=499)
        try:
            rows = job.result.result()
        except ShuttingDown as stopping:
            return self._failed(endpoint, _shutting_down(stopping))
        except BaseException as failure:  # the model failed on this batch
            return self._failed(endpoint, ApiError(
                500, f"generation failed: {type(failure).__name__}", type="server_error"))
        usage = _usage(gen, rows)
        self.metrics.count(endpoint, 200)
        self.metrics.finished(endpoint, time.perf_counter() - started, usage["prompt_tokens"],
                              usage["completion_tokens"])
        return JSONResponse(self._answer(gen, rows, usage))

    def _failed(self, endpoint: str, err: ApiError) -> Response:
        self.metrics.count(endpoint, err.status)
        return _error(err)

    def _answer(self, gen: Generation, rows: list[Row], usage: dict[str, int]) -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            text = row.text(self.tokenizer)
            choice: dict[str, Any] = {"index": i, "finish_reason": _finish_reason(row), "logprobs": None}
            if gen.kind == "chat":
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choices.append(choice)
        prefix, kind = ("chatcmpl", "chat.completion") if gen.kind == "chat" else ("cmpl", "text_completion")
        return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
                "model": gen.model, "choices": choices, "usage": usage}

    async def _events(self, job: Job, gen: Generation, endpoint: str, started: float) -> AsyncIterator[str]:
        chat = gen.kind == "chat"
        head = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": gen.model}

        def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
            payload: dict[str, Any] = dict(head, choices=choices)
            if usage is not None:
                payload["usage"] = usage
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        def choice(i: int, text: str | None, reason: str | None) -> dict[str, Any]:
            if chat:
                delta: dict[str, Any] = {} if text is None else {"content": text}
                return {"index": i, "delta": delta, "finish_reason": reason, "logprobs": None}
            return {"index": i, "text": text or "", "finish_reason": reason, "logprobs": None}

        if chat:
            yield event([{"index": i, "delta": {"role": "assistant", "content": ""},
                          "finish_reason": None, "logprobs": None} for i in range(gen.n)])
        while True:
            kind, index, text = await job.events.get()
            if kind == "delta" and index is not None:
                yield event([choice(index, text, None)])
            elif kind == "done":
                break
            else:
                failure = job.result.exception() if not job.result.cancelled() else None
                error = (_shutting_down(failure) if isinstance(failure, ShuttingDown)
                         else ApiError(500, f"generation failed: {text}", type="server_error"))
                yield f"data: {json.dumps(error.body())}\n\n"
                yield "data: [DONE]\n\n"
                return
        rows = job.rows
        yield event([choice(i, None, _finish_reason(row)) for i, row in enumerate(rows)])
        usage = _usage(gen, rows)
        if gen.include_usage:
            yield event([], usage)
        self.metrics.finished(endpoint, time.perf_counter() - started, usage["prompt_tokens"],
                              usage["completion_tokens"])
        yield "data: [DONE]\n\n"


def _shutting_down(stopping: ShuttingDown) -> ApiError:
    return ApiError(503, str(stopping) or SHUTDOWN_MESSAGE, type="server_error",
                    code="shutting_down")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
    err = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", type=kind)
    return _error(err)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return _error(ApiError(500, f"internal error: {type(exc).__name__}", type="server_error"))


def batching_for(catalog: Catalog, wanted: str) -> tuple[str, str | None]:
    """The batching the server will use, and why it is not the one wanted (None: it is).

    Continuous batching decodes in kvsl's own loop, which reproduces `generate` for kvsl's
    settings on models with a plain per-layer cache; other models are batched dynamically.
    """
    if wanted != "continuous":
        return wanted, None
    from kvsl.engine.continuous import unsupported_reason

    reason = unsupported_reason(catalog.loaded.model)
    return ("dynamic", reason) if reason is not None else ("continuous", None)


def create_app(
    catalog: Catalog,
    config: ServerConfig | None = None,
    *,
    run_rows: Callable[..., Any] | None = None,
    executor: Any = None,
) -> Starlette:
    """The ASGI app serving `catalog`.

    `config.batching` "continuous": a `kvsl.engine.continuous.RowDecoder` on the catalog's
    model; "dynamic" (or `run_rows` given): `run_rows(rows, settings, on_step)` generates a
    batch (by default `kvsl.engine.rows.generate_rows`). The model thread decodes with its own
    copy of the tokenizer, the event loop (prompts, answers) with the catalog's. `executor`
    is the model thread, best the one that loaded the model (`kvsl.serve.server.model_thread`);
    None: a new one.
    """
    import copy

    config = config or ServerConfig()
    model, tokenizer = catalog.loaded.model, copy.deepcopy(catalog.loaded.tokenizer)
    decoder: Any = None
    if run_rows is None and config.batching == "continuous":
        from kvsl.engine.continuous import RowDecoder

        decoder = RowDecoder(model, tokenizer)
    elif run_rows is None:
        from kvsl.engine.rows import generate_rows

        def run_rows(rows: list[Row], settings: Any, on_step: Callable[[], None]) -> Any:
            return generate_rows(model, tokenizer, rows, settings=settings, on_step=on_step)

    server = _Server(catalog, config, run_rows, decoder, tokenizer, executor)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.startup()
        try:
            yield
        finally:
            await server.shutdown()

    routes = [
        Route("/health", server.health, methods=["GET"]),
        Route("/metrics", server.prometheus, methods=["GET"]),
        Route("/v1/models", server.models, methods=["GET"]),
        Route("/v1/models/{model:path}", server.model, methods=["GET"]),
        Route("/v1/chat/completions", server.chat, methods=["POST"]),
        Route("/v1/completions", server.completions, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.server = server
    return app
