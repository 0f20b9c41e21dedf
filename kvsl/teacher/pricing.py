"""Token usage and an estimated cost for a teaching run.

Prices are US dollars per million tokens (input, output), from the providers' public price
lists as of 2025; they change, so the figure printed is labelled an estimate. Models served
locally (vLLM, ollama, llama.cpp) or not in the table get no estimate ("unknown").
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsl.base.plurals import counted

# model name → (USD per 1M input tokens, USD per 1M output tokens)
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


@dataclass(frozen=True)
class Usage:
    """Token counts summed over the replies that reported usage."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # successful replies
    unreported: int = 0  # replies without a `usage` field (some local servers)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.requests + other.requests,
            self.unreported + other.unreported,
        )

    @classmethod
    def of_reply(cls, usage: object) -> Usage:
        """The usage one reply reports (its `usage` field, as the client parsed it).

        A reply without one (or one with neither count), or whose counts are not whole numbers from 0 to 10^12 (a
        broken server's `"lots"`, `NaN`, `-5`), counts as unreported rather than ending
        the run or skewing the estimated cost.

        >>> from types import SimpleNamespace as Reported
        >>> Usage.of_reply(Reported(prompt_tokens=12, completion_tokens=3)).total_tokens
        15
        >>> Usage.of_reply(None).unreported, Usage.of_reply(Reported(prompt_tokens="lots")).unreported
        (1, 1)
        """
        prompt = _token_count(getattr(usage, "prompt_tokens", 0) or 0)
        completion = _token_count(getattr(usage, "completion_tokens", 0) or 0)
        counted = hasattr(usage, "prompt_tokens") or hasattr(usage, "completion_tokens")
        if not counted or prompt is None or completion is None:
            return cls(requests=1, unreported=1)
        return cls(prompt_tokens=prompt, completion_tokens=completion, requests=1)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _token_count(value: object) -> int | None:
    """`value` as a token count, or None when it cannot be one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (value == value and 0 <= value <= 10**12) or value != int(value):  # NaN, ±inf
        return None
    return int(value)


def price_for(model: str) -> tuple[str, tuple[float, float]] | None:
    """The price-table entry for a model name, dated snapshots included; None if unknown.

    The longest matching name wins, so `gpt-4o-mini-2024-07-18` is priced as
    `gpt-4o-mini`, not `gpt-4o`.

    >>> price_for("gpt-4o-2024-08-06")[0]
    'gpt-4o'
    >>> price_for("llama3.1:8b") is None
    True
    """
    name = model.strip().lower().removeprefix("openai/")
    for known in sorted(PRICES_PER_MILLION, key=len, reverse=True):
        if name == known or name.startswith(known + "-"):
            return known, PRICES_PER_MILLION[known]
    return None


def estimate_cost(model: str, usage: Usage) -> float | None:
    """Estimated US dollars for `usage` on `model`, or None when the price is unknown.

    >>> estimate_cost("gpt-4o", Usage(prompt_tokens=1_000_000, completion_tokens=100_000))
    3.5
    """
    entry = price_for(model)
    if entry is None:
        return None
    _, (per_input, per_output) = entry
    return round(
        usage.prompt_tokens * per_input / 1e6 + usage.completion_tokens * per_output / 1e6, 6
    )


def describe_cost(model: str, usage: Usage) -> str:
    """One line for the end of a run: tokens and the estimate (or "unknown").

    >>> describe_cost("my-local-model", Usage(10, 5, 1))
    'tokens: 10 prompt + 5 completion = 15; estimated cost: unknown (no price for `my-local-model`)'
    """
    tokens = (
        f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
        f"= {usage.total_tokens}"
    )
    if usage.unreported:
        tokens += f" ({counted(usage.unreported, 'reply', 'replies')} reported no usage)"
    cost = estimate_cost(model, usage)
    if cost is None:
        return f"{tokens}; estimated cost: unknown (no price for `{model}`)"
    return f"{tokens}; estimated cost: ${cost:.4f} at {price_for(model)[0]} list prices"  # type: ignore[index]
