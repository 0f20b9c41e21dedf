"""Side-by-side speed of methods: ms per generated token, measured in one run.

Every method generates exactly `tokens` new tokens for the same prompts (min = max new
tokens); each is warmed up once, then the methods take turns in a rotating order, repeat
after repeat, so that a slow moment of a shared machine hits all of them alike; the median
over repeats is reported with the min and max.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Speed:
    method: str
    ms_per_token: float  # median over repeats
    spread: tuple[float, float]  # (min, max) over repeats
    tokens: int  # generated per repeat (all prompts)

    def ratio_to(self, other: Speed) -> float:
        return self.ms_per_token / other.ms_per_token


def time_methods(
    generator: Any,
    methods: Sequence[Any],
    questions: Sequence[str],
    *,
    tokens: int = 64,
    repeats: int = 3,
) -> list[Speed]:
    """Median ms/token of each method on the same prompts, methods interleaved.

    >>> # time_methods(gen, [plain, cache, caa], questions[:8], tokens=64)
    """
    from kvsl.engine.generate import GenerationSettings

    settings = GenerationSettings(max_new_tokens=tokens, min_new_tokens=tokens)
    warm = GenerationSettings(max_new_tokens=2)
    for method in methods:  # first calls pay one-off costs (allocations, caches)
        generator.generate(method, questions[:1], warm)
    samples: dict[str, list[float]] = {m.name: [] for m in methods}
    counts: dict[str, int] = {}
    for repeat in range(repeats):
        # Rotate the order every repeat, so no method is always first after a pause.
        shift = repeat % len(methods)
        for method in [*methods[shift:], *methods[:shift]]:
            began = time.perf_counter()
            out = generator.generate(method, questions, settings)
            elapsed = time.perf_counter() - began
            count = sum(g.tokens for g in out)
            counts[method.name] = count
            samples[method.name].append(1000 * elapsed / max(1, count))
    return [
        Speed(
            m.name,
            statistics.median(samples[m.name]),
            (min(samples[m.name]), max(samples[m.name])),
            counts[m.name],
        )
        for m in methods
    ]
