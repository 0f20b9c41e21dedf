"""One batch, many requests: rows with their own edit, length limit and stop strings.

`generate_rows` is what a server needs from the engine. Every row of a batch may carry a
different cache edit (another style, other coefficients) or none at all (plain generation),
because the edit is made once, on the prefilled cache, row by row
(`kvsl.engine.steer.apply_row_edits`); decoding then runs for the whole batch with no
per-token cost. Each row stops on its own: at an end-of-sequence token, at its own
`max_new_tokens`, at one of its stop strings, or when another thread sets `cancelled`.

Greedy rows give exactly what `generate_batch` gives each of them alone (tested token for
token), so a server that batches requests returns what `kvsl run` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kvsl.engine.generate import (
    GenerationSettings,
    cut_at_stop,
    eos_ids,
    generation_config,
    left_pad,
    pad_token_id,
)
from kvsl.engine.models import cache_kwarg
from kvsl.engine.steer import CacheEdit, apply_row_edits, prefill

_GREEDY = GenerationSettings()
FinishReason = str  # "stop" (end of sequence or a stop string), "length", "cancelled"


@dataclass(eq=False)
class Row:
    """One generation in a batch: its inputs, and its output as it is produced.

    - `offset_id is None`: plain generation from the prompt `T`.
    - `offset_id` set: `T + [o]` is fed; with an `edit`, `T` is prefilled and edited first
      (the steering convention of `kvsl.engine.steer`). A style at coefficient 0 is an
      offset row without an edit.

    `tokens` and `finish_reason` are filled in while generating; `cancelled` may be set from
    another thread and ends the row at the next decoding step.
    """

    prompt: Sequence[int]  # T, token ids
    offset_id: int | None = None
    edit: CacheEdit | None = None
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    tokens: list[int] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    cancelled: bool = False
    # Continuous batching decodes each row with its own settings (`kvsl.engine.continuous`;
    # `max_new_tokens` and `stop` are the row's own above) and, when it samples, its own
    # generator, shared by the rows of one request; `generate_rows` uses the batch's instead.
    settings: GenerationSettings = _GREEDY
    rng: Any = None  # torch.Generator
    # Fed after `T + [o]` before anything is generated (an assistant prefix such as
    # chain-of-thought's); continuous batching only (`generate_rows` refuses it).
    suffix: tuple[int, ...] = ()

    @property
    def fed(self) -> list[int]:
        """The ids given to the model: `T`, `T + [o]` for a steered row, then `suffix`."""
        offset = [self.offset_id] if self.offset_id is not None else []
        return [*self.prompt, *offset, *self.suffix]

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def steered(self) -> bool:
        return self.edit is not None and not self.edit.is_empty

    def text(self, tokenizer: Any) -> str:
        """The generated text so far, cut before the first stop string."""
        return cut_at_stop(tokenizer.decode(self.tokens, skip_special_tokens=True), self.stop)


def _row_criteria(
    rows: Sequence[Row], tokenizer: Any, eos: set[int], on_step: Callable[[], object] | None
) -> Any:
    from transformers import StoppingCriteria

    class RowCriteria(StoppingCriteria):
        """Takes each row's new token and says which rows are finished.

        It sees the newest token as the last column of `input_ids` at every step, before
        (or, in older transformers, after) any streamer does, so all per-row bookkeeping is here.
        """

        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            newest = input_ids[:, -1].tolist()  # (batch,)
            for row, token in zip(rows, newest, strict=True):
                if row.done:
                    continue
                if row.cancelled:
                    row.finish_reason = "cancelled"
                elif token in eos:
                    row.finish_reason = "stop"
                else:
                    row.tokens.append(int(token))
                    if row.stop and any(
                        s in tokenizer.decode(row.tokens, skip_special_tokens=True)
                        for s in row.stop
                    ):
                        row.finish_reason = "stop"
                    elif len(row.tokens) >= row.max_new_tokens:
                        row.finish_reason = "length"
            if on_step is not None:
                on_step()
            return torch.tensor([row.done for row in rows], device=input_ids.device)

    return RowCriteria()


def generate_rows(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Row],
    *,
    settings: GenerationSettings = _GREEDY,
    on_step: Callable[[], object] | None = None,
) -> Sequence[Row]:
    """Generate every row in one batch; fills in each row's `tokens` and `finish_reason`.

    Sampling settings and the seed are the batch's (`settings`; its `max_new_tokens` and
    `stop` are ignored: each row has its own). `on_step()` is called after every decoding
    step, from this thread, once the rows have taken their new tokens (a server streams
    from there).

    The prefill is split only when some row has a non-empty edit: `T` without the last
    column is prefilled, each row's edit is added at the last prefilled position (`T`'s last
    token in a steered row), and `generate` feeds the last column. A batch without edits is
    one ordinary `generate` call, as `generate_batch` makes it.

    >>> # rows = [Row(t, OFFSET, edit_a), Row(t), Row(t, OFFSET, edit_b)]
    >>> # generate_rows(model, tok, rows); rows[1].tokens   → plain generation's tokens
    """
    if not rows:
        return rows
    if any(row.edit is not None and row.offset_id is None for row in rows):
        raise ValueError("a steered row needs the offset token id")
    if any(row.suffix for row in rows):
        raise ValueError("a row with a suffix needs continuous batching (RowDecoder)")
    device = model.device
    pad_id = pad_token_id(tokenizer, model)
    input_ids, attention_mask = left_pad([row.fed for row in rows], pad_id, device)
    config = generation_config(
        model, _replace_max(settings, max(row.max_new_tokens for row in rows)), pad_id
    )
    eos = set(eos_ids(tokenizer, model))
    from transformers import StoppingCriteriaList

    kwargs: dict[str, Any] = {
        "stopping_criteria": StoppingCriteriaList([_row_criteria(rows, tokenizer, eos, on_step)])
    }
    devices = [device] if device.type == "cuda" else []
    with torch.inference_mode(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)  # as generate_batch: reproducible, global RNG untouched
        if any(row.steered for row in rows):
            cut = input_ids.shape[1] - 1
            cache = prefill(model, input_ids[:, :cut], attention_mask[:, :cut])
            apply_row_edits(cache, [row.edit if row.steered else None for row in rows])
            kwargs[cache_kwarg(model)] = cache
        model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            **kwargs,
        )
    for row in rows:  # the batch ended at the longest row's limit: the others ended before
        if row.finish_reason is None:
            row.finish_reason = "length"
    return rows


def _replace_max(settings: GenerationSettings, max_new_tokens: int) -> GenerationSettings:
    from dataclasses import replace

    return replace(settings, max_new_tokens=max_new_tokens, stop=())
