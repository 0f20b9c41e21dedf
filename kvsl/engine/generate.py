"""Batched plain and steered generation: prompts, left padding, stop strings, streaming.

`generate_texts` is the one entry point `kvsl run` and the Python API share; it keeps the
batch full (`kvsl.engine.offline`). `generate_batch` is the static batch, for models that
path cannot decode and for activation steering: it is left-padded, so the last prompt token
is at the same index in every row and one cache edit (`kvsl.engine.steer.apply_edit`)
covers the whole batch.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch

from kvsl.engine.geometry import cache_kwarg
from kvsl.engine.inputs import left_pad
from kvsl.engine.prompting import chat_messages, prompt_ids
from kvsl.engine.steer import CacheEdit, apply_edit, prefill
from kvsl.lang.plan import GenerationSettings

__all__ = ["GenerationSettings", "TokenStreamer", "chat_prompt", "generate_batch"]


def chat_prompt(
    tokenizer: Any, prompt: str, system_prompt: str | None = None, prefix: str = ""
) -> list[int]:
    """Token ids of `T` for one user prompt (the convention extraction used), then the
    vectors' `prefix` (the paper's prefix variant; "" for none)."""
    return prompt_ids(tokenizer, chat_messages(prompt, system_prompt=system_prompt), prefix)


def pad_token_id(tokenizer: Any, model: Any) -> int:
    """The id used for left padding: the tokenizer's pad token, else an end-of-sequence id."""
    for candidate in (tokenizer.pad_token_id, model.generation_config.pad_token_id):
        if isinstance(candidate, int):
            return candidate
    eos = eos_ids(tokenizer, model)
    return eos[0] if eos else 0


def eos_ids(tokenizer: Any, model: Any) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the first stop string (the stop string itself is not kept).

    >>> cut_at_stop("a\\n\\nQuestion: b", ["\\n\\nQuestion:"])
    'a'
    """
    cut = len(text)
    for s in stop:
        if s and (at := text.find(s)) != -1:
            cut = min(cut, at)
    return text[:cut]


def _stop_criteria(tokenizer: Any, stop: Sequence[str], prompt_width: int) -> Any:
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        """Ends a row once its decoded continuation contains a stop string.

        Decoding the continuation (not matching token ids) makes it independent of how the
        tokenizer happens to split the stop string.
        """

        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            done = [
                any(
                    s in tokenizer.decode(row[prompt_width:], skip_special_tokens=True)
                    for s in stop
                )
                for row in input_ids.tolist()
            ]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopOnStrings()


class TokenStreamer:
    """Writes a single generation to a stream as it is produced (a small TextStreamer).

    `generate` calls `put` with the prompt first (skipped), then with each new token. Text
    that could be the start of a stop string is held back until it is clear, and nothing is
    written after a stop string; a trailing replacement character (half a UTF-8 sequence)
    waits for the next token.
    """

    def __init__(
        self,
        tokenizer: Any,
        stop: Sequence[str] = (),
        write: Callable[[str], object] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.write = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
        self.ids: list[int] = []
        self.shown = 0  # characters of the decoded text already written
        self.prompt_seen = False
        self.stopped = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError("TokenStreamer streams a single generation (batch size 1)")
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        self._flush(final=False)

    def end(self) -> None:
        self._flush(final=True)
        self.write("\n")

    def _flush(self, final: bool) -> None:
        if self.stopped:
            return
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        safe = cut_at_stop(text, self.stop)
        if len(safe) < len(text):
            self.stopped = True
        elif not final:
            if safe.endswith("\ufffd"):
                safe = safe[:-1]
            # Hold back a suffix that a stop string might still complete.
            for s in self.stop:
                for k in range(min(len(s) - 1, len(safe)), 0, -1):
                    if safe.endswith(s[:k]):
                        safe = safe[: len(safe) - k]
                        break
        if len(safe) > self.shown:
            self.write(safe[self.shown :])
            self.shown = len(safe)


def generation_config(model: Any, settings: GenerationSettings, pad_id: int) -> Any:
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens = settings.max_new_tokens
    config.min_new_tokens = settings.min_new_tokens
    config.pad_token_id = pad_id
    config.num_beams = 1
    config.do_sample = settings.sample
    config.repetition_penalty = settings.repetition_penalty
    config.no_repeat_ngram_size = settings.no_repeat_ngram_size
    if settings.sample:
        config.temperature = settings.temperature
        config.top_p = settings.top_p
        # The plan's nucleus sampling, without a hidden top-k: None would be filled in from
        # the model's own config or generate's global default (50); 0 switches it off.
        config.top_k = settings.top_k or 0
    else:  # unset sampling knobs so greedy decoding does not warn about them
        config.temperature = None
        config.top_p = None
        config.top_k = None
    # Decoding controls: transformers builds its own logits processors from these fields
    # (RepetitionPenaltyLogitsProcessor, NoRepeatNGramLogitsProcessor, ...). "Off" values
    # are set explicitly, so a model's shipped generation_config cannot switch one on
    # behind the plan's back (and plain and steered rows decode alike).
    config.repetition_penalty = settings.repetition_penalty
    config.no_repeat_ngram_size = settings.no_repeat_ngram_size or None
    return config


def generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    settings: GenerationSettings,
    offset_id: int | None = None,
    edit: CacheEdit | None = None,
    streamer: Any = None,
    suffix: Sequence[int] = (),
) -> list[list[int]]:
    """Generate for one batch of prompt ids `T`; returns the new token ids of each row.

    `suffix` is fed after `T` (and the offset token), before anything is generated: an
    assistant prefix such as chain-of-thought's "Let's think step by step.". Every row ends
    with the same tail, so `T`'s last token sits at one index in every left-padded row.

    - `edit is None, offset_id is None`: plain generation from `T`.
    - `edit is None`, `offset_id` set: plain generation from `T + [o]` (what `--compare`
      shows as "plain": the same tokens as steering, without the edit).
    - `edit` set (`offset_id` required): prefill `T`, add the edit at `T`'s last position,
      then `generate` from `T + [o]` with that cache. An empty edit still takes this path.
    """
    if edit is not None and offset_id is None:
        raise ValueError("steered generation needs the offset token id")
    device = model.device
    pad_id = pad_token_id(tokenizer, model)
    tail = ([offset_id] if offset_id is not None else []) + list(suffix)
    rows = [list(p) + tail for p in prompts]
    input_ids, attention_mask = left_pad(rows, pad_id, device)  # (batch, seq)
    config = generation_config(model, settings, pad_id)
    kwargs: dict[str, Any] = {}
    if settings.stop:
        from transformers import StoppingCriteriaList

        kwargs["stopping_criteria"] = StoppingCriteriaList(
            [_stop_criteria(tokenizer, settings.stop, input_ids.shape[1])]
        )
    devices = [device] if device.type == "cuda" else []
    with torch.inference_mode(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)  # sampling is reproducible and leaves global RNG alone
        if edit is not None:
            # Prefill T (all but the tail); every row's last T token is then at index -1.
            cut = input_ids.shape[1] - len(tail)
            cache = prefill(model, input_ids[:, :cut], attention_mask[:, :cut])
            apply_edit(cache, edit)
            kwargs[cache_kwarg(model)] = cache
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            streamer=streamer,
            **kwargs,
        )
    eos = set(eos_ids(tokenizer, model))
    new_tokens: list[list[int]] = []
    for row in output[:, input_ids.shape[1] :].tolist():
        # Rows that finished early are padded after their end-of-sequence token.
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        new_tokens.append(row[:cut])
    return new_tokens


def decode(tokenizer: Any, tokens: Sequence[int], stop: Sequence[str] = ()) -> str:
    """The generated text, cut before the first stop string."""
    return cut_at_stop(tokenizer.decode(list(tokens), skip_special_tokens=True), stop)
