"""The model's context window: a prompt and its new tokens must fit in the model's positions.

One check for every front door: `kvsl run` and the Python API (`generate_texts`), `kvsl eval`,
`kvsl tune` and the scripts built on them (the eval's `Generator`), and `kvsl serve` (its
request checks, worded for `max_tokens`). Past `max_position_embeddings` a model with learned
positions fails mid-batch with an IndexError, and a rotary one generates from positions it
was never trained on, so the request is refused before anything is generated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import KvslError

__all__ = ["context_length", "context_overflow", "refuse_past_context"]


def context_length(model: Any) -> int | None:
    """The positions `model` has (`config.max_position_embeddings`); None when it states none."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def context_overflow(
    model: Any, fed: int, max_new_tokens: int, *, name: str = "--max-new-tokens",
    prompt: str = "the prompt",
) -> str | None:  # fmt: skip
    """What is wrong when `fed` prompt tokens and `max_new_tokens` new ones pass the model's
    context, worded for the setting `name`; None when they fit (or no context is known).

    >>> class Config: max_position_embeddings = 100
    >>> class Model: config = Config()
    >>> context_overflow(Model(), 30, 70) is None
    True
    >>> context_overflow(Model(), 30, 71)
    "the prompt (30 tokens) and `--max-new-tokens` (71) exceed the model's context of 100 tokens"
    """
    context = context_length(model)
    if context is None or fed + max_new_tokens <= context:
        return None
    return (
        f"{prompt} ({counted(fed, 'token')}) and `{name}` ({max_new_tokens}) exceed the "
        f"model's context of {counted(context, 'token')}"
    )


def refuse_past_context(model: Any, fed: Iterable[int], max_new_tokens: int) -> None:
    """KVS463, a usage error, when the longest prompt (`fed`: each prompt's tokens before the
    first new one, offset token and assistant prefix included) and `max_new_tokens` do not
    fit in the model's context."""
    lengths = list(fed)
    longest = max(lengths, default=0)
    what = "the prompt" if len(lengths) == 1 else "the longest prompt"
    problem = context_overflow(model, longest, max_new_tokens, prompt=what)
    if problem is None:
        return
    room = (context_length(model) or 0) - longest
    raise KvslError.usage(
        "KVS463",
        problem,
        help=f"lower `--max-new-tokens` to {room} or less"
        if room >= 1
        else "shorten the prompt: it fills the model's context by itself",
    )
