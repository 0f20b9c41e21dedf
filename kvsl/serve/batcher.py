"""Dynamic batching: requests that arrive together are generated together, one row each.

(`--batching dynamic`; the server's default is continuous batching, `kvsl.serve.continuous`,
which shares this module's jobs, slots and queue.)

The scheduler runs on the event loop; the model runs on one worker thread, one batch at a
time. When the model is idle and a request arrives, the scheduler waits `gather_s` (a few
milliseconds) for others, and again while more keep arriving (at most 4 × `gather_s`),
then takes up to `max_batch` rows: rows of any style, any
coefficients and plain rows share a batch (`kvsl.engine.rows`); only the sampling settings
must agree. A sampled request with its own `seed` runs alone, so its output does not depend
on its neighbours (it equals `kvsl run --sample --seed`). Requests that arrive while a batch
runs wait for the next one (new rows do not join a running batch: dynamic, not continuous,
batching).

Slots: a job holds one from `submit` until it finishes, fails or is cancelled (a client
that disconnects), whichever comes first; `release` is idempotent, so a slot is freed
exactly once. When `max_queue` jobs are already waiting, `submit` raises `Busy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kvsl.engine.generate import GenerationSettings, cut_at_stop
from kvsl.engine.rows import Row
from kvsl.serve.server import model_thread


@dataclass(frozen=True)
class Sampling:
    """What rows of one batch must share: greedy, or sampling with these settings."""

    sample: bool
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None  # a sampled job with a seed runs alone
    # Decoding controls (repetition penalty, no-repeat n-grams, ...): rows of one batch share
    # one GenerationConfig, so jobs with different controls go to different batches.
    controls: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        base = (False,) if not self.sample else (True, self.temperature, self.top_p)
        return (*base, self.controls)

    @property
    def alone(self) -> bool:
        return self.sample and self.seed is not None


class Busy(Exception):
    """The queue is full; `retry_after` is a guess in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server is stopping and takes no more work."""


SHUTDOWN_MESSAGE = "the server is shutting down"


def visible_text(tokenizer: Any, row: Row, final: bool) -> str:
    """What may be shown of a row so far: before a stop string, never half a character,
    never a tail that a stop string might still complete (unless the row is finished)."""
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    safe = cut_at_stop(text, row.stop)
    if final or len(safe) < len(text):
        return safe
    safe = safe.rstrip("\ufffd")  # half a UTF-8 sequence: wait for the next token
    for stop in row.stop:
        for k in range(min(len(stop) - 1, len(safe)), 0, -1):
            if safe.endswith(stop[:k]):
                safe = safe[: len(safe) - k]
                break
    return safe


class Job:
    """One request's rows (`n` of them) and the way its answer goes back to the handler.

    A streaming job receives events on `events`: `("delta", index, text)`, then
    `("done", None, None)` or `("error", None, message)`. Every job's `result` future is
    set when it ends (its rows), or given the exception.
    """

    def __init__(self, rows: list[Row], sampling: Sampling, *, stream: bool = False) -> None:
        self.rows = rows
        self.sampling = sampling
        self.stream = stream
        self.loop = asyncio.get_running_loop()
        self.result: asyncio.Future[list[Row]] = self.loop.create_future()
        self.events: asyncio.Queue[tuple[str, int | None, str | None]] = asyncio.Queue()
        self.shown = [""] * len(rows)  # text already streamed, per row (worker thread only)
        self.created = time.perf_counter()
        self.cancelled = False
        self.finishing = False  # all rows done; the loop ends the job (set by the worker)
        self._release: Callable[[Job], None] | None = None

    @property
    def finished(self) -> bool:
        return self.result.done()

    def cancel(self) -> None:
        """The client is gone: stop its rows at the next step and free its slot now."""
        if self.finished:
            return
        self.cancelled = True
        for row in self.rows:
            row.cancelled = True
        self._end(error=asyncio.CancelledError())

    def abort(self, error: BaseException) -> None:
        """End the job with `error` (its handler answers it) and stop its rows at the next
        step: the server's shutdown ending what did not finish in time."""
        if self.finished:
            return
        self.cancelled = True
        for row in self.rows:
            row.cancelled = True
        self._end(error=error)

    def stream_deltas(self, tokenizer: Any, final: bool) -> None:
        """Send what is newly visible in each row: from the worker thread while generating,
        from the loop (`final`) at the end, where the deltas must precede the end event."""
        for i, row in enumerate(self.rows):
            text = visible_text(tokenizer, row, final or row.done)
            if len(text) > len(self.shown[i]) and text.startswith(self.shown[i]):
                delta, self.shown[i] = text[len(self.shown[i]) :], text
                if final:
                    self.events.put_nowait(("delta", i, delta))
                else:
                    self.loop.call_soon_threadsafe(self.events.put_nowait, ("delta", i, delta))

    def _end(self, error: BaseException | None = None) -> None:
        """Event loop only. Ends the job once: result, final event, slot."""
        if self.result.done():
            return
        if error is None:
            self.result.set_result(self.rows)
            self.events.put_nowait(("done", None, None))
        else:
            if isinstance(error, asyncio.CancelledError):
                self.result.cancel()
            else:
                self.result.set_exception(error)
                self.result.exception()  # marked as retrieved: a handler may be gone
            self.events.put_nowait(("error", None, str(error) or type(error).__name__))
        if self._release is not None:
            self._release(self)
            self._release = None


class Batcher:
    """Queues jobs, forms batches, runs them on one worker thread.

    `run_rows(rows, settings, on_step)` generates one batch (blocking; worker thread).
    `executor` is that thread (one worker), by default a new one; the batcher shuts it down.
    `tokenizer` is used on the event loop, `worker_tokenizer` (by default the same) on the
    worker thread: HF fast tokenizers must not be used by two threads at once.
    """

    def __init__(
        self,
        run_rows: Callable[[list[Row], GenerationSettings, Callable[[], None]], object],
        tokenizer: Any,
        *,
        worker_tokenizer: Any = None,
        max_batch: int = 16,
        max_queue: int = 64,
        gather_s: float = 0.005,
        metrics: Any = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.run_rows = run_rows
        self.tokenizer = tokenizer
        self.worker_tokenizer = worker_tokenizer if worker_tokenizer is not None else tokenizer
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.gather_s = gather_s
        self.metrics = metrics
        self.pending: deque[Job] = deque()
        self.in_flight: set[Job] = set()  # jobs holding a slot (waiting or running)
        self.running_rows = 0
        self.last_batch_seconds = 1.0
        self.batches = 0
        self._wake = asyncio.Event()
        # The model thread; the server passes the one that loaded the model (`server.model_thread`).
        self._executor = executor if executor is not None else model_thread()
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Future[Any] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def submit(self, job: Job) -> None:
        """Queue a job (it holds a slot until it ends); `Busy` if `max_queue` jobs wait."""
        if self._stopping:
            raise ShuttingDown()
        waiting = sum(1 for j in self.pending if not j.finished)
        if waiting >= self.max_queue:
            raise Busy(max(1, round(self.last_batch_seconds)))
        job._release = self._released
        self.in_flight.add(job)
        self.pending.append(job)
        self._gauges()
        self._wake.set()

    def _released(self, job: Job) -> None:
        self.in_flight.discard(job)
        self._gauges()

    def _gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.in_flight.set(len(self.in_flight))
            self.metrics.queued.set(sum(1 for j in self.pending if not j.finished))

    def _take(self) -> list[Job]:
        """The next batch: the oldest job, then later ones with the same sampling settings."""
        while self.pending and self.pending[0].finished:
            self.pending.popleft()  # cancelled while waiting: its slot is already free
        if not self.pending:
            return []
        first = self.pending.popleft()
        batch, rows = [first], len(first.rows)
        if first.sampling.alone:
            return batch
        kept: deque[Job] = deque()
        while self.pending:
            job = self.pending.popleft()
            if job.finished:
                continue
            fits = rows + len(job.rows) <= self.max_batch
            if fits and not job.sampling.alone and job.sampling.key == first.sampling.key:
                batch.append(job)
                rows += len(job.rows)
            else:
                kept.append(job)
        self.pending = kept
        return batch

    async def _loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self.pending and not self._stopping:
                await self._gather()
                batch = self._take()
                self._gauges()
                if batch:
                    await self._run(batch)

    def _waiting_rows(self) -> int:
        return sum(len(j.rows) for j in self.pending if not j.finished)

    async def _gather(self) -> None:
        """Wait `gather_s` for more requests, and again while they keep arriving (clients
        that send together rarely arrive within a few milliseconds), up to 4 × `gather_s`."""
        waited = 0.0
        while 0 < self._waiting_rows() < self.max_batch and waited < 4 * self.gather_s:
            before = len(self.pending)
            await asyncio.sleep(self.gather_s)
            waited += self.gather_s
            if len(self.pending) == before:
                return

    async def _run(self, batch: list[Job]) -> None:
        rows = [row for job in batch for row in job.rows]
        sampling = batch[0].sampling
        seed = sampling.seed if sampling.seed is not None else random.randrange(2**31)
        settings = GenerationSettings(
            sample=sampling.sample,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=seed,
            **dict(sampling.controls),
        )
        loop = asyncio.get_running_loop()

        def on_step() -> None:  # worker thread, after every decoding step
            for job in batch:
                if job.finishing or job.finished or job.cancelled:
                    continue
                if all(row.done for row in job.rows):
                    # From here on only the loop touches the job: it sends the last deltas.
                    job.finishing = True
                    loop.call_soon_threadsafe(self._finish, job)
                elif job.stream:
                    job.stream_deltas(self.worker_tokenizer, final=False)

        started = time.perf_counter()
        self.running_rows = len(rows)
        if self.metrics is not None:
            self.metrics.batch_rows.observe(len(rows))
        try:
            self._current = loop.run_in_executor(self._executor, self.run_rows, rows, settings, on_step)
            await self._current
        except Exception as err:  # the model failed: every job of the batch gets the error
            for job in batch:
                job._end(error=err)
        else:
            for job in batch:
                self._finish(job)
        finally:
            self._current = None
            self.running_rows = 0
            self.batches += 1
            self.last_batch_seconds = time.perf_counter() - started

    def _finish(self, job: Job) -> None:
        if job.finished:
            return
        if job.stream:
            job.stream_deltas(self.tokenizer, final=True)
        job._end()

    async def stop(self) -> None:
        """Refuse new work, end waiting and running jobs (the server has already let in-flight
        requests finish, up to `--shutdown-timeout`), stop the thread."""
        self._refuse_waiting()
        for job in list(self.in_flight):  # the running batch stops at its next step
            job.abort(ShuttingDown(SHUTDOWN_MESSAGE))
        await self._stop_worker()

    def _refuse_waiting(self) -> None:
        """Take no new work and end every job still waiting for the model."""
        self._stopping = True
        for job in list(self.pending):
            job._end(error=ShuttingDown(SHUTDOWN_MESSAGE))
        self.pending.clear()

    async def _stop_worker(self) -> None:
        """Wait for the model thread's current step, then stop the loop task and the thread."""
        if self._current is not None:
            with contextlib.suppress(Exception):
                await self._current
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)
