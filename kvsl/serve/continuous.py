"""Continuous batching: requests join the running batch between decoding steps.

The scheduler runs on the event loop, the model on one worker thread, which decodes one
token for every running row at each step (`kvsl.engine.continuous.RowDecoder`). Between
two steps the worker takes the requests handed to it: they are prefilled together, each
row with its own edit, and merged into the running batch. A row that ends leaves at once,
and its request's slot in the batch goes to the next waiting request, without waiting for
the longest row. Rows of any style, coefficients and sampling settings share the batch:
each row decodes with its own settings and its own random generator, so a sampled request
with a seed gives what it gives alone.

When the model is idle and a request arrives, the scheduler still waits `gather_s` (and
again while more keep arriving, at most 4 × `gather_s`), so requests sent together are
prefilled in one pass; once the model runs, a request joins at the next step.

Slots are the dynamic batcher's (`kvsl.serve.batcher`): a job holds one from `submit` until
it ends; a cancelled job (its client left) frees its slot at once and its rows leave the
batch at the next step. `running_rows` counts the rows handed to the model and not yet
gone; `max_batch` bounds it.
"""

from __future__ import annotations

import asyncio
import queue
import time
from typing import Any

from kvsl.serve.batcher import SHUTDOWN_MESSAGE, Batcher, Job, ShuttingDown


class ContinuousBatcher(Batcher):
    """Queues jobs and feeds them to a `RowDecoder` that runs on one worker thread.

    `decoder` has `join(rows)`, `step() -> rows that left`, `rows` and `clear()`; it decodes
    with `worker_tokenizer` (never used on the event loop: fast tokenizers are not safe to
    share between threads).
    """

    def __init__(
        self,
        decoder: Any,
        tokenizer: Any,
        *,
        worker_tokenizer: Any = None,
        max_batch: int = 16,
        max_queue: int = 64,
        gather_s: float = 0.005,
        metrics: Any = None,
        executor: Any = None,
    ) -> None:
        super().__init__(_no_batches, tokenizer, worker_tokenizer=worker_tokenizer,
                         max_batch=max_batch, max_queue=max_queue, gather_s=gather_s,
                         metrics=metrics, executor=executor)
        self.decoder = decoder
        self.joined_running = 0  # rows that joined while others were decoding
        self._inbox: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._started: dict[Job, float] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop())
        self._current = loop.run_in_executor(self._executor, self._work, loop)

    async def _loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self.running_rows == 0 and self.pending:
                await self._gather()  # idle: let requests sent together be prefilled together
            self._dispatch()

    def _dispatch(self) -> None:
        """Hand waiting jobs to the model, oldest first, while their rows fit in the batch."""
        if self._stopping:
            return
        batch: list[Job] = []
        while self.pending:
            job = self.pending[0]
            if job.finished:  # cancelled while waiting: its slot is already free
                self.pending.popleft()
                continue
            if self.running_rows + len(job.rows) > self.max_batch:
                break
            self.pending.popleft()
            batch.append(job)
            self.running_rows += len(job.rows)
            self._started[job] = time.perf_counter()
        if batch:
            self.batches += 1
            self._inbox.put(batch)
        self._gauges()

    def _left(self, job: Job, error: BaseException | None = None) -> None:
        """Event loop: the job's rows have left the batch (done, cancelled or failed)."""
        self.running_rows -= len(job.rows)
        started = self._started.pop(job, None)
        if started is not None and error is None and not job.cancelled:
            self.last_batch_seconds = time.perf_counter() - started
        if error is not None:
            job._end(error=error)
        else:
            self._finish(job)
        self._dispatch()

    # --- the worker thread ---------------------------------------------------------------

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """The model thread: take joining jobs, step, report jobs whose rows all left."""
        running: dict[Job, None] = {}  # insertion-ordered set
        stopping = False
        while not (stopping and not running):
            joining: list[Job] = []
            block = not running and not stopping
            while True:
                try:
                    item = self._inbox.get(block=block)
                except queue.Empty:
                    break
                block = False
                if item is None:
                    stopping = True
                else:
                    joining += item
            if joining:
                self._join(loop, running, joining)
            if running:
                self._step(loop, running)

    def _join(self, loop: asyncio.AbstractEventLoop, running: dict[Job, None], jobs: list[Job]) -> None:
        for job in [j for j in jobs if j.cancelled]:  # left before it joined
            for row in job.rows:
                row.finish_reason = "cancelled"
            loop.call_soon_threadsafe(self._left, job)
        jobs = [j for j in jobs if not j.cancelled]
        rows = [row for job in jobs for row in job.rows]
        if not rows:
            return
        already = len(self.decoder.rows)
        try:
            self.decoder.join(rows)
        except Exception as err:  # these jobs fail; the running batch is untouched
            for job in jobs:
                loop.call_soon_threadsafe(self._left, job, err)
            return
        if already:
            self.joined_running += len(rows)
            if self.metrics is not None:
                self.metrics.joined_running.inc(len(rows))
        running.update(dict.fromkeys(jobs))

    def _step(self, loop: asyncio.AbstractEventLoop, running: dict[Job, None]) -> None:
        if self.metrics is not None:
            self.metrics.batch_rows.observe(len(self.decoder.rows))
        try:
            self.decoder.step()
        except Exception as err:  # the model failed: every running job gets the error
            self.decoder.clear()
            for job in running:
                loop.call_soon_threadsafe(self._left, job, err)
            running.clear()
            return
        for job in list(running):
            if all(row.done for row in job.rows):
                del running[job]  # from here on only the loop touches the job
                loop.call_soon_threadsafe(self._left, job)
            elif job.stream and not job.cancelled:
                job.stream_deltas(self.worker_tokenizer, final=False)

    # --- stopping ------------------------------------------------------------------------

    async def stop(self) -> None:
        """Refuse new work, end waiting jobs, cancel the rows still decoding (the server has
        already let in-flight requests finish), stop the thread."""
        self._refuse_waiting()
        for job in list(self.in_flight):  # each handler answers 503 `shutting_down`
            job.abort(ShuttingDown(SHUTDOWN_MESSAGE))
        self._inbox.put(None)
        await self._stop_worker()


def _no_batches(*_: Any) -> None:
    raise AssertionError("a continuous batcher runs no whole batches")
