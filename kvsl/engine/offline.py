"""Offline batched generation with the batch kept full: a queue of rows through one `RowDecoder`.

Static batching (`kvsl.engine.generate.generate_batch`) runs a batch until its longest row
ends, usually at `max_new_tokens` when one row loops, so short answers pay for the longest.
Here a row that ends leaves the running batch at once and the next queued row joins in its
place, between two decoding steps (`kvsl.engine.continuous.RowDecoder`: its own prefill and
cache edit, so a steered row keeps the one-edit method). A greedy row gives what
`generate_batch` gives it alone, token for token, whoever shares the batch with it; a
sampled row draws from its own generator seeded with `settings.seed`, so it gives the same
tokens run after run, whatever the batch size or the other rows.

This is the path of `generate_texts` (`kvsl run`, the Python API) and of `kvsl eval`,
`kvsl tune` and the scripts built on them. The static path stays for what a `RowDecoder`
cannot decode: models `continuous.unsupported_reason` names, and activation steering
(CAA), whose forward hook steers the batch as a whole.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import torch

from kvsl.engine.context_window import refuse_past_context
from kvsl.engine.continuous import RowDecoder, unsupported_reason
from kvsl.engine.generate import decode, generate_batch
from kvsl.engine.rows import Row
from kvsl.engine.steer import CacheEdit
from kvsl.lang.plan import GenerationSettings

__all__ = ["continuous_supported", "decode_queue", "generate_texts", "queue_rows"]

# What `on_done` receives: the row's index in the input, the finished row, its seconds.
OnDone = Callable[[int, Row, float], object]


def continuous_supported(model: Any) -> bool:
    """Whether `model` can be decoded with the batch kept full (else: static batches)."""
    return unsupported_reason(model) is None


def queue_rows(
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings,
    *,
    offset_id: int | None = None,
    edit: CacheEdit | None = None,
    suffix: Sequence[int] = (),
) -> list[Row]:
    """One row per prompt `T`, as `generate_batch` feeds it: `T (+ [o]) (+ suffix)`, the
    edit (when set and not empty) added at `T`'s last position."""
    if edit is not None and offset_id is None:
        raise ValueError("steered generation needs the offset token id")
    return [
        Row(list(prompt), offset_id, edit, settings.max_new_tokens, tuple(settings.stop),
            settings=settings, suffix=tuple(suffix))
        for prompt in prompts
    ]  # fmt: skip


def decode_queue(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Row],
    *,
    batch_size: int,
    on_done: OnDone | None = None,
    streamer: Any = None,
) -> list[float]:
    """Decode every row, at most `batch_size` at a time, in the given order; fills in each
    row's `tokens` and `finish_reason` and returns each row's seconds.

    A row's seconds are its share of the wall time: of its join's prefill (split evenly
    among the rows joining) and of every step it took part in (one token per row). Rows
    join whenever the batch has room. `on_done(i, row, seconds)` is called as each row
    ends, before the next step (`kvsl eval` saves the answer there, so a killed run loses
    only rows still decoding). `streamer` (one row) gets `put` and `end` as in `generate`.
    """
    if streamer is not None and len(rows) != 1:
        raise ValueError("streaming needs exactly one prompt")
    decoder = RowDecoder(model, tokenizer)
    index = {id(row): i for i, row in enumerate(rows)}
    waiting = deque(range(len(rows)))
    seconds = [0.0] * len(rows)
    if streamer is not None:
        streamer.put(torch.tensor([rows[0].fed]))  # the prompt, which a streamer skips
    while waiting or decoder.rows:
        room = max(1, batch_size) - len(decoder.rows)
        if waiting and room > 0:
            joining = [waiting.popleft() for _ in range(min(room, len(waiting)))]
            _timed(seconds, joining, decoder.join, [rows[i] for i in joining])
        running = [index[id(row)] for row in decoder.rows]
        shown = len(rows[0].tokens)
        finished = _timed(seconds, running, decoder.step)
        if streamer is not None and len(rows[0].tokens) > shown:
            streamer.put(torch.tensor(rows[0].tokens[shown:]))
        for row in finished:
            i = index[id(row)]
            if on_done is not None:
                on_done(i, row, seconds[i])
    if streamer is not None:
        streamer.end()
    return seconds


def _timed(seconds: list[float], rows: Sequence[int], work: Callable[..., Any], *args: Any) -> Any:
    """Run `work(*args)`, adding an even share of its wall time to each of `rows`' seconds."""
    began = time.perf_counter()
    result = work(*args)
    share = (time.perf_counter() - began) / max(1, len(rows))
    for i in rows:
        seconds[i] += share
    return result


def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    settings: GenerationSettings,
    offset_id: int | None = None,
    edit: CacheEdit | None = None,
    batch_size: int = 8,
    streamer: Any = None,
    on_batch: Callable[[int], object] | None = None,
) -> list[str]:
    """Generate for every prompt, `batch_size` rows at a time; texts in input order.

    The batch is kept full (`kvsl.engine.offline`): a row that ends leaves and the next
    prompt (shortest first) joins. Models a `RowDecoder` cannot decode run in static
    batches of `batch_size` (`generate_batch`). Greedy texts are the same either way:
    each row's text is what it gives alone.

    `on_batch(n)` is called as prompts finish, with how many finished (1 at a time when
    the batch is kept full, a whole batch otherwise).
    """
    if streamer is not None and len(prompts) != 1:
        raise ValueError("streaming needs exactly one prompt")
    # KVS463 before anything is generated: every row is `T (+ [o])`.
    fed = offset_id is not None
    refuse_past_context(model, (len(p) + fed for p in prompts), settings.max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    if continuous_supported(model):
        rows = queue_rows([prompts[i] for i in order], settings, offset_id=offset_id, edit=edit)

        def done(position: int, row: Any, seconds: float) -> None:
            texts[order[position]] = row.text(tokenizer)
            if on_batch is not None:
                on_batch(1)

        decode_queue(model, tokenizer, rows, batch_size=batch_size, on_done=done, streamer=streamer)
        return texts
    for start in range(0, len(order), max(1, batch_size)):
        chunk = order[start : start + batch_size]
        outputs = generate_batch(
            model,
            tokenizer,
            [prompts[i] for i in chunk],
            settings=settings,
            offset_id=offset_id,
            edit=edit,
            streamer=streamer,
        )
        for i, tokens in zip(chunk, outputs, strict=True):
            texts[i] = decode(tokenizer, tokens, settings.stop)
        if on_batch is not None:
            on_batch(len(chunk))
    return texts
