"""Continuous batching: rows join a running batch between decoding steps and leave when done.

KV-cache steering makes joining cheap. A joining row is prefilled on its own (with the
other rows joining at the same step), its own edit is added to its own cache
(`kvsl.engine.steer.apply_row_edits`; plain rows get none), and its cache is merged into
the running batch's: both are left-padded to one length, and an attention mask says which
columns of each row are real. Keys are cached already rotated (RoPE), so moving a row's
columns to the right changes nothing it computes; its next position is the number of real
tokens it has cached. A row that ends (end of sequence, its `max_new_tokens`, a stop
string, `cancelled`) leaves at once: its rows of the cache are dropped, and columns that no
remaining row uses are cut off.

Each row decodes with its own settings (`Row.settings`): greedy, or sampling with its own
temperature, top-p, top-k and random generator (`Row.rng`, shared by the `n` rows of one
request), and its own decoding controls, applied by transformers' logits processors to the
row's own tokens, as `generate` applies them to a row alone. So a greedy row gives what
`kvsl.engine.generate.generate_batch` gives it alone, token for token, whoever it shares
the batch with (tested), and a sampled row with a seed gives what `generate` gives with
that seed.

The split of the work: `join` prefills the prompt without its last token (`T` for a
steered row, whose last token is then the offset token `o`), and the first `step` after it
feeds that last token together with the running rows' newest tokens: every step is one
forward pass of one token per row.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kvsl.engine.generate import GenerationSettings, eos_ids, pad_token_id
from kvsl.engine.inputs import left_pad, new_cache
from kvsl.engine.models import cache_kwarg
from kvsl.engine.rows import Row
from kvsl.engine.steer import apply_row_edits, prefill

# Fields of a model's own generation config that `generate` would turn into logits
# processors the decoder here does not build (kvsl's settings never set them).
_FOREIGN_FIELDS = (
    "bad_words_ids", "sequence_bias", "suppress_tokens", "begin_suppress_tokens",
    "forced_bos_token_id", "forced_eos_token_id", "exponential_decay_length_penalty",
    "min_p", "epsilon_cutoff", "eta_cutoff", "top_h", "watermarking_config",
)


def unsupported_reason(model: Any) -> str | None:
    """Why this model cannot be decoded here (None: it can).

    Continuous batching needs a cache of plain per-layer tensors (no sliding window, no
    linear attention), and a generation config with nothing but what kvsl's settings control.
    """
    layers = getattr(new_cache(model), "layers", None) or []
    odd = {type(layer).__name__ for layer in layers} - {"DynamicLayer"}
    if odd:
        return f"its cache has {', '.join(sorted(odd))} layers"
    config = model.generation_config
    for name in _FOREIGN_FIELDS:
        if getattr(config, name, None) not in (None, [], {}, 0.0):
            return f"its generation config sets `{name}`"
    if (getattr(config, "min_length", 0) or 0) > 0:
        return "its generation config sets `min_length`"
    if getattr(config, "typical_p", None) not in (None, 1.0):
        return "its generation config sets `typical_p`"
    if getattr(config, "guidance_scale", None) not in (None, 1.0):
        return "its generation config sets `guidance_scale`"
    return None


def row_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The random generator of one request's rows: the stream `torch.manual_seed(seed)`
    gives `generate`, so a sampled row alone equals `kvsl run --sample --seed`."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _processors(settings: GenerationSettings, prompt_length: int, eos: list[int], model_config: Any) -> Any:
    """The logits processors `generate` builds for these settings, in its order.

    kvsl leaves two fields unset when they are off (`top_k`, `no_repeat_ngram_size`), and
    `generate` then fills them from the model's own generation config, else its defaults.
    """
    from transformers import (
        LogitsProcessorList,
        MinNewTokensLengthLogitsProcessor,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(float(settings.repetition_penalty)))
    ngram = settings.no_repeat_ngram_size or getattr(model_config, "no_repeat_ngram_size", None) or 0
    if ngram > 0:
        processors.append(NoRepeatNGramLogitsProcessor(ngram))
    if settings.min_new_tokens > 0 and eos:
        processors.append(MinNewTokensLengthLogitsProcessor(prompt_length, settings.min_new_tokens, eos))
    if settings.sample:
        if settings.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(settings.temperature))
        # No hidden top-k, as in `kvsl run` (engine/generate.generation_config sets it to 0).
        if settings.top_k:
            processors.append(TopKLogitsWarper(settings.top_k))
        if settings.top_p < 1.0:
            processors.append(TopPLogitsWarper(settings.top_p))
    return processors


def _greedy_token(processors: Any, history: torch.Tensor, logits: torch.Tensor) -> int:
    """The token greedy decoding picks with these processors: the argmax after the controls
    (repetition penalty, n-gram and length rules), before the warpers (temperature, top-k,
    top-p), which keep the best token and never change its rank."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers = (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)
    scores = logits  # (1, vocab)
    for processor in processors:
        if not isinstance(processor, warpers):
            scores = processor(history, scores)
    return int(torch.argmax(scores, dim=-1))


@dataclass(eq=False)
class _Running:
    """A row in the batch and what its decoding needs besides the cache."""

    row: Row
    processors: Any  # LogitsProcessorList, empty for plain greedy rows
    generator: torch.Generator | None  # sampled rows only
    history: list[int] = field(default_factory=list)  # fed + generated ids (processors read it)


class RowDecoder:
    """A running batch of rows: `join` adds rows, `step` decodes one token for every row.

    >>> # decoder = RowDecoder(model, tokenizer)
    >>> # decoder.join([Row(t1, OFFSET, edit)]); decoder.step(); decoder.join([Row(t2)])
    >>> # while decoder.rows: finished = decoder.step()     # rows that left at this step
    """

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = model.device
        self.eos = eos_ids(tokenizer, model)
        self._eos = set(self.eos)
        self.pad_id = pad_token_id(tokenizer, model)
        self._cache_name = cache_kwarg(model)
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._running: list[_Running] = []
        self._cache: Any = None
        self._mask = torch.zeros((0, 0), dtype=torch.long, device=self.device)  # (batch, cached)
        self._next = torch.zeros((0,), dtype=torch.long, device=self.device)  # (batch,)

    @property
    def rows(self) -> list[Row]:
        return [running.row for running in self._running]

    @property
    def cached_length(self) -> int:
        return int(self._mask.shape[1])

    def clear(self) -> None:
        """Forget every row (after a failed step: the cache may be half updated)."""
        self._running = []
        self._cache = None
        self._mask = self._mask[:0, :0]
        self._next = self._next[:0]

    def join(self, rows: Sequence[Row]) -> None:
        """Prefill `rows` together, edit each one's cache, merge them into the batch.

        A steered row with a `suffix` feeds `[o] + suffix` after its edit: rows are joined
        in groups by how many tokens they feed between the edit and the first step.
        """
        if not rows:
            return
        for row in rows:
            if row.edit is not None and row.offset_id is None:
                raise ValueError("a steered row needs the offset token id")
            if not row.fed:
                raise ValueError("a row needs at least one prompt token")
        groups: dict[int, list[Row]] = {}
        for row in rows:
            groups.setdefault(_after_edit(row), []).append(row)
        for after, group in groups.items():
            self._join_group(group, after)

    def _join_group(self, rows: Sequence[Row], after: int) -> None:
        """Join rows that each feed `after` tokens between their edit and their last token."""
        heads = [row.fed[: len(row.fed) - 1 - after] for row in rows]  # T for a steered row
        with torch.inference_mode():
            if max(len(head) for head in heads) > 0:
                ids, mask = left_pad(heads, self.pad_id, self.device)  # (joining, width)
                cache = prefill(self.model, ids, mask)
                apply_row_edits(cache, [row.edit if row.steered else None for row in rows])
                if after:
                    middle = [row.fed[len(row.fed) - 1 - after : -1] for row in rows]
                    mask = self._feed(cache, mask, torch.tensor(middle, device=self.device))
            else:
                cache, mask = None, torch.zeros((len(rows), 0), dtype=torch.long, device=self.device)
            self._merge(cache, mask)
        nexts = torch.tensor([row.fed[-1] for row in rows], dtype=torch.long, device=self.device)
        self._next = torch.cat([self._next, nexts])
        for row in rows:
            settings = row.settings
            generator = row.rng
            if settings.sample and generator is None:
                generator = row.rng = row_generator(settings.seed, self.device)
            self._running.append(_Running(
                row, _processors(settings, len(row.fed), self.eos, self.model.generation_config),
                generator if settings.sample else None, list(row.fed),
            ))

    def _feed(self, cache: Any, mask: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Feed `ids` (joining, n) into a prefilled cache; returns the mask (joining, width + n)."""
        full = torch.cat([mask, torch.ones_like(ids)], dim=1)
        steps = torch.arange(ids.shape[1], device=self.device)[None, :]
        kwargs: dict[str, Any] = {
            "input_ids": ids, "attention_mask": full,
            "position_ids": mask.sum(dim=1, keepdim=True) + steps,  # (joining, n)
            "use_cache": True, self._cache_name: cache,
        }
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        self.model(**kwargs)
        return full

    def step(self) -> list[Row]:
        """One decoding step for every row; returns the rows that ended (and left the batch).

        Cancelled rows leave before the step, without a token.
        """
        finished = [r.row for r in self._running if r.row.cancelled]
        for row in finished:
            row.finish_reason = "cancelled"
        self._drop()
        if not self._running:
            return finished
        with torch.inference_mode():
            ones = torch.ones((len(self._running), 1), dtype=torch.long, device=self.device)
            mask = torch.cat([self._mask, ones], dim=1)  # (batch, cached + 1)
            positions = self._mask.sum(dim=1, keepdim=True)  # real tokens so far: (batch, 1)
            if self._cache is None:
                self._cache = new_cache(self.model)
            kwargs: dict[str, Any] = {
                "input_ids": self._next[:, None], "attention_mask": mask,
                "position_ids": positions, "use_cache": True, self._cache_name: self._cache,
            }
            if self._logits_to_keep:
                kwargs["logits_to_keep"] = 1
            logits = self.model(**kwargs).logits[:, -1].to(dtype=torch.float32)  # (batch, vocab)
            self._mask = mask
            tokens = self._choose(logits)
        for running, token in zip(self._running, tokens, strict=True):
            self._take(running, token)
        self._next = torch.tensor(tokens, dtype=torch.long, device=self.device)
        done = [r.row for r in self._running if r.row.done]
        self._drop()
        return finished + done

    def _choose(self, logits: torch.Tensor) -> list[int]:
        """Each row's next token: argmax for plain greedy rows (at once), else its own
        processors on its own tokens, then argmax or a draw from its own generator."""
        tokens = torch.argmax(logits, dim=-1).tolist()  # (batch,)
        for i, running in enumerate(self._running):
            if not running.processors and running.generator is None:
                continue
            history = torch.tensor([running.history], dtype=torch.long, device=self.device)
            scores = running.processors(history, logits[i : i + 1])  # (1, vocab)
            if running.generator is None:
                tokens[i] = int(torch.argmax(scores, dim=-1))
            else:
                probs = torch.nn.functional.softmax(scores, dim=-1)  # (1, vocab)
                if not bool(torch.isfinite(probs).all()):
                    # Scores past float32 (a temperature near 0 divides logits into inf):
                    # no distribution to draw from, and multinomial's error failed every
                    # row of the batch. Sampling tends to the greedy token as T -> 0.
                    tokens[i] = _greedy_token(running.processors, history, logits[i : i + 1])
                    continue
                tokens[i] = int(torch.multinomial(probs, 1, generator=running.generator))
        return [int(t) for t in tokens]

    def _take(self, running: _Running, token: int) -> None:
        """A row's new token: the end of sequence, or one more token and maybe its end."""
        row = running.row
        running.history.append(token)
        if token in self._eos:
            row.finish_reason = "stop"
            return
        row.tokens.append(token)
        if row.stop and any(s in self.tokenizer.decode(row.tokens, skip_special_tokens=True) for s in row.stop):
            row.finish_reason = "stop"
        elif len(row.tokens) >= row.max_new_tokens:
            row.finish_reason = "length"

    def _merge(self, cache: Any, mask: torch.Tensor) -> None:
        """Append joining rows (their cache, their mask (joining, width)) to the batch."""
        if not self._running:
            self._cache, self._mask = cache, mask
            self._next = self._next[:0]
            return
        width = max(self.cached_length, int(mask.shape[1]))
        if width == 0:
            self._mask = torch.zeros((len(self._running) + mask.shape[0], 0), dtype=torch.long,
                                     device=self.device)
            return
        old, new = _tensors(self._cache), _tensors(cache)
        shapes = old or new
        merged = []
        for layer, (like, _) in enumerate(shapes):
            merged.append(tuple(
                torch.cat([
                    _left_pad(_or_empty(old, layer, part, len(self._running), like), width),
                    _left_pad(_or_empty(new, layer, part, int(mask.shape[0]), like), width),
                ])
                for part in (0, 1)
            ))
        from transformers import DynamicCache

        self._cache = DynamicCache(ddp_cache_data=merged, config=self.model.config)
        self._mask = torch.cat([_left_pad_mask(self._mask, width), _left_pad_mask(mask, width)])

    def _drop(self) -> None:
        """Remove finished rows from the batch, and cache columns no remaining row uses."""
        keep = [i for i, running in enumerate(self._running) if not running.row.done]
        if len(keep) == len(self._running):
            return
        self._running = [self._running[i] for i in keep]
        if not keep:
            self._cache = None
            self._mask = self._mask[:0, :0]
            self._next = self._next[:0]
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self._mask = self._mask.index_select(0, index)
        self._next = self._next.index_select(0, index)
        unused = int((self._mask.sum(dim=0) == 0).long().cumprod(dim=0).sum())  # leading pad columns
        if self._cache is not None and self.cached_length > 0:
            tensors = [
                # cut the unused columns first, then gather the kept rows: one contiguous copy of
                # only what stays, (rows_kept, kv_heads, cached - unused, head_dim)
                tuple(t[:, :, unused:][index] for t in kv)
                for kv in _tensors(self._cache)
            ]
            from transformers import DynamicCache

            self._cache = DynamicCache(ddp_cache_data=tensors, config=self.model.config)
        self._mask = self._mask[:, unused:]


def _after_edit(row: Row) -> int:
    """Tokens a row feeds after its edit, before its last one: `len(suffix)` for a steered
    row (`[o] + suffix` follow `T`), 0 for any other (its prefill is all but the last token)."""
    return len(row.suffix) if row.steered else 0


def _tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (keys, values), (batch, kv_heads, seq, head_dim); [] for an empty cache."""
    if cache is None or cache.get_seq_length() == 0:
        return []
    return [(layer.keys, layer.values) for layer in cache.layers]


def _or_empty(
    tensors: list[tuple[torch.Tensor, torch.Tensor]], layer: int, part: int, batch: int, like: torch.Tensor
) -> torch.Tensor:
    if tensors:
        return tensors[layer][part]
    return like.new_zeros((batch, like.shape[1], 0, like.shape[3]))


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """(batch, heads, seq, dim) → (batch, heads, width, dim), zeros on the left."""
    return torch.nn.functional.pad(tensor, (0, 0, width - tensor.shape[2], 0))


def _left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(mask, (width - mask.shape[1], 0))
