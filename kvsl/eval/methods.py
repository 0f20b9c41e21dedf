"""The methods `kvsl eval` compares, all generating through one code path.

    plain      the chat prompt `T` (generation prompt on), greedy or sampled
    cot        `T` + "Let's think step by step." as the start of the assistant turn
    cache      KV-cache steering: prefill `T`, add c·S at its last position, feed the
               offset token `o`, generate (the paper's method, see kvsl.engine.steer);
               vectors extracted with `extract.prefix` get `T` + that prefix, as at extraction
    cache+cot  cache steering, then `o` + the CoT prefix before generating
    caa        activation steering: `T`, with multiplier·direction added to one layer's
               output at the last prompt position and every decoding step (kvsl.eval.caa)

Every method uses the same prompts (same system prompt), the same batching, left padding
and decoding settings, so accuracy, response length and ms per token compare like with
like. Responses are the generated text only (never the CoT prefix).

Batching: the batch is kept full (`kvsl.engine.offline`): an answered question leaves and
the next joins, with its own prefill and cache edit; CAA (whose hook steers a batch as a
whole) and models a `RowDecoder` cannot decode run in static batches.

Timing: `Generation.seconds` is the example's share of the wall time, prefill included:
of each decoding step it took part in (split evenly among the rows), or in static batches
of its batch's time in proportion to the tokens it generated; ms/token of a method is
1000 · Σ seconds / Σ tokens.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from kvsl.base.hashing import text_sha256
from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch, pad_token_id
from kvsl.engine.inputs import left_pad, position_ids
from kvsl.engine.models import kv_geometry
from kvsl.engine.steer import resolve_edit
from kvsl.engine.vectors import SteeringVectors
from kvsl.eval.caa import CaaVectors, caa_steering
from kvsl.eval.forced import decide
from kvsl.lang.diagnostics import KvslError

METHOD_NAMES = ("plain", "cot", "cache", "cache+cot", "caa")
COT_PREFIX = "Let's think step by step."
FORCED_CHOICE_CUE = "\nThe answer is"


def parse_methods(text: str) -> tuple[str, ...]:
    """`"plain,cache"` → `("plain", "cache")`; KVS610 for an unknown name.

    >>> parse_methods("plain, cot,cache+cot")
    ('plain', 'cot', 'cache+cot')
    """
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in METHOD_NAMES]
    if unknown or not names:
        raise KvslError.usage(
            "KVS610",
            f"unknown eval method `{unknown[0] if unknown else text}`",
            help=f"`--methods` takes a comma-separated list of {', '.join(METHOD_NAMES)}",
        )
    return names


@dataclass(frozen=True)
class Method:
    """One configured method. `name` is what reports show (unique within an eval).

    `settings()` is everything that changes its generations, hashed into the cache key.
    """

    name: str
    kind: str  # one of METHOD_NAMES
    cot: bool = False
    coefficients: tuple[tuple[int, float, float], ...] = ()  # (layer, c_k, c_v) for cache
    caa_layer: int | None = None
    caa_multiplier: float = 0.0
    vectors: SteeringVectors | None = field(default=None, compare=False, repr=False)
    caa: CaaVectors | None = field(default=None, compare=False, repr=False)
    vector_id: str = ""  # content id of the vectors (artifact vector hash / CAA pairs hash)

    def settings(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "cot": self.cot}
        if self.kind.startswith("cache"):
            data["coefficients"] = [list(c) for c in self.coefficients]
            data["offset_token"] = self.vectors.offset_token if self.vectors else None
            if self.vectors is not None and self.vectors.prefix:
                data["prefix"] = self.vectors.prefix  # only when set: old cache keys hold
            data["vectors"] = self.vector_id
        if self.kind == "caa":
            data["layer"] = self.caa_layer
            data["multiplier"] = self.caa_multiplier
            data["vectors"] = self.vector_id
        return data


def plain_method(name: str = "plain") -> Method:
    return Method(name, "plain")


def cot_method(name: str = "cot") -> Method:
    return Method(name, "cot", cot=True)


def cache_method(
    vectors: SteeringVectors,
    coefficients: dict[int, tuple[float, float]],
    *,
    cot: bool = False,
    name: str | None = None,
    vector_id: str = "",
) -> Method:
    """Cache steering with `{layer: (c_k, c_v)}` (optionally followed by the CoT prefix)."""
    kind = "cache+cot" if cot else "cache"
    coeffs = tuple(
        (int(layer), float(k), float(v)) for layer, (k, v) in sorted(coefficients.items())
    )
    vid = vector_id or str(vectors.manifest.get("vector_hash", "")) or _tensor_id(vectors.values)
    return Method(name or kind, kind, cot, coeffs, vectors=vectors, vector_id=vid)


def caa_method(
    vectors: CaaVectors, layer: int, multiplier: float, *, name: str | None = None
) -> Method:
    """Activation steering at one layer with one multiplier."""
    vid = str(vectors.manifest.get("pairs_sha256", "")) or _tensor_id(vectors.directions)
    return Method(
        name or "caa",
        "caa",
        caa_layer=int(layer),
        caa_multiplier=float(multiplier),
        caa=vectors,
        vector_id=vid,
    )


def _tensor_id(tensors: dict[int, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for layer in sorted(tensors):
        digest.update(str(layer).encode())
        digest.update(tensors[layer].to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def settings_hash(payload: dict[str, object]) -> str:
    """A short stable hash of a JSON-able settings dict (the results-cache key part)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return text_sha256(text)[:16]


@dataclass(frozen=True)
class Generation:
    """One response: its text, its number of new tokens, its share of the batch time."""

    text: str
    tokens: int
    seconds: float


def encode_text(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


@dataclass(frozen=True)
class Job:
    """One method answering `questions` with `settings` (`Generator.generate_jobs`)."""

    method: Method
    questions: Sequence[str]
    settings: GenerationSettings


@dataclass
class Generator:
    """Runs methods on one model: `generate(method, questions, settings)`."""

    model: Any
    tokenizer: Any
    system_prompt: str | None = None
    batch_size: int = 8
    static_batches: bool = False  # the old static batches, for comparison (bench/eval_speed.py)

    def prompt_ids(self, question: str, method: Method | None = None) -> list[int]:
        """`T` for `question`; for cache steering with vectors extracted with a prefix
        (`extract.prefix`), `T` ends in that prefix, as at extraction."""
        prefix = method.vectors.prefix if method is not None and method.vectors else ""
        return chat_prompt(self.tokenizer, question, self.system_prompt, prefix)

    @contextmanager
    def _method_context(self, method: Method) -> Iterator[None]:
        if method.kind == "caa":
            assert method.caa is not None and method.caa_layer is not None
            with caa_steering(self.model, method.caa, method.caa_layer, method.caa_multiplier):
                yield
        else:
            with nullcontext():
                yield

    def generate(
        self,
        method: Method,
        questions: Sequence[str],
        settings: GenerationSettings,
        *,
        on_batch: Callable[[int], object] | None = None,
        on_done: Callable[[int, Generation], object] | None = None,
    ) -> list[Generation]:
        """Generate one response per question, `batch_size` at a time (shortest prompts first).

        The batch is kept full (`kvsl.engine.offline`); activation steering and models a
        `RowDecoder` cannot decode run in static batches. `on_done(i, generation)` is called
        as question `i` is answered, `on_batch(n)` as `n` more are.
        """

        def done(job: int, i: int, generation: Generation) -> None:
            if on_done is not None:
                on_done(i, generation)
            if on_batch is not None:
                on_batch(1)

        return self.generate_jobs([Job(method, questions, settings)], on_done=done)[0]

    def generate_jobs(
        self,
        jobs: Sequence[Job],
        *,
        on_done: Callable[[int, int, Generation], object] | None = None,
    ) -> list[list[Generation]]:
        """Every job's responses, from ONE queue where the model allows it.

        Rows of different methods and decodings share the running batch (each row carries
        its own edit and logits processors), so a batch stays full until the last row of
        the last job: a tune round or an eval of several methods pays one tail, not one per
        method. Greedy rows give the tokens they give alone. Jobs a `RowDecoder` cannot
        decode (CAA, static batches, unsupported models) run after, job by job.
        `on_done(job, i, generation)` is called as question `i` of `jobs[job]` is answered.
        """
        from kvsl.engine.context_window import refuse_past_context
        from kvsl.engine.offline import continuous_supported, decode_queue, queue_rows

        prepared = []
        for job in jobs:
            offset_id, edit, suffix = self._steering(job.method)
            prompts = [self.prompt_ids(q, job.method) for q in job.questions]
            # KVS463 before anything is generated: every row is `T (+ [o]) (+ suffix)`.
            fed = len(suffix) + (offset_id is not None)
            refuse_past_context(
                self.model, (len(p) + fed for p in prompts), job.settings.max_new_tokens
            )
            prepared.append((offset_id, edit, suffix, prompts))
        results: list[list[Generation | None]] = [[None] * len(job.questions) for job in jobs]

        def finish(job: int, i: int, tokens: Sequence[int], seconds: float) -> None:
            stops = jobs[job].settings.stop
            text = self.tokenizer.decode(list(tokens), skip_special_tokens=True)
            for stop in stops:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            results[job][i] = generation = Generation(text, len(tokens), seconds)
            if on_done is not None:
                on_done(job, i, generation)

        queued = not self.static_batches and continuous_supported(self.model)
        rows: list[Any] = []
        owners: list[tuple[int, int]] = []  # (job, question) of each row
        for j, (job, (offset_id, edit, suffix, prompts)) in enumerate(
            zip(jobs, prepared, strict=True)
        ):
            if queued and job.method.kind != "caa":
                rows += queue_rows(
                    prompts, job.settings, offset_id=offset_id, edit=edit, suffix=suffix
                )
                owners += [(j, i) for i in range(len(prompts))]
                continue
            order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
            with self._method_context(job.method):
                self._static(
                    [(i, prompts[i]) for i in order],
                    job.settings,
                    offset_id,
                    suffix,
                    edit,
                    functools.partial(finish, j),
                )
        if rows:
            # Shortest prompts first, over all jobs (a question's rows stay side by side).
            order = sorted(range(len(rows)), key=lambda k: len(rows[k].fed))
            decode_queue(
                self.model,
                self.tokenizer,
                [rows[k] for k in order],
                batch_size=self.batch_size,
                on_done=lambda k, row, seconds: finish(*owners[order[k]], row.tokens, seconds),
            )
        return [[g for g in job if g is not None] for job in results]

    def _steering(self, method: Method) -> tuple[int | None, Any, list[int]]:
        """(offset token id, cache edit, suffix ids) of `method`'s rows."""
        from kvsl.engine.prompting import offset_token_id

        suffix = encode_text(self.tokenizer, COT_PREFIX) if method.cot else []
        if not method.kind.startswith("cache"):
            return None, None, suffix
        if method.vectors is None:
            raise ValueError("cache steering needs vectors")
        offset_id = offset_token_id(self.tokenizer, method.vectors.offset_token)
        coefficients = {layer: (k, v) for layer, k, v in method.coefficients}
        edit = resolve_edit(method.vectors, coefficients, kv_geometry(self.model))
        return offset_id, edit, suffix

    def _static(
        self,
        prompts: Sequence[tuple[int, list[int]]],
        settings: GenerationSettings,
        offset_id: int | None,
        suffix: list[int],
        edit: Any,
        finish: Callable[[int, Sequence[int], float], None],
    ) -> None:
        """Static batches of `batch_size`: rows are `T (+ [o]) (+ CoT prefix)`; an example's
        seconds are its batch's wall time in proportion to the tokens it generated."""
        size = max(1, self.batch_size)
        for start in range(0, len(prompts), size):
            chunk = prompts[start : start + size]
            began = time.perf_counter()
            outputs = generate_batch(
                self.model,
                self.tokenizer,
                [p for _, p in chunk],
                settings=settings,
                offset_id=offset_id,
                edit=edit,
                suffix=suffix,
            )
            elapsed = time.perf_counter() - began
            total = sum(len(o) for o in outputs) or 1
            for (i, _), tokens in zip(chunk, outputs, strict=True):
                finish(i, tokens, elapsed * len(tokens) / total)

    def forced_choices(
        self,
        method: Method,
        questions: Sequence[str],
        responses: Sequence[str],
        labels: Sequence[Sequence[str]],
    ) -> list[str | None]:
        """The label the (unsteered) model rates most likely after each response
        (`label_scores`); None when the labels do not start with distinct tokens."""
        return [decide(s) for s in self.label_scores(method, questions, responses, labels)]

    def label_scores(
        self,
        method: Method,
        questions: Sequence[str],
        responses: Sequence[str],
        labels: Sequence[Sequence[str]],
    ) -> list[dict[str, float] | None]:
        """Per response, the unsteered model's log-probabilities of its labels, renormalised
        over them, as the next token after the prompt, the CoT prefix if the method used
        one, the response, then "\\nThe answer is" (`kvsl.eval.forced`). None where the
        labels do not start with distinct tokens."""
        prefix = COT_PREFIX if method.cot else ""
        rows: list[list[int]] = []
        candidates: list[list[int] | None] = []
        for question, response, options in zip(questions, responses, labels, strict=True):
            found = _label_tokens(self.tokenizer, options)
            cue = found[0] if found else FORCED_CHOICE_CUE
            rows.append(
                self.prompt_ids(question, method)
                + encode_text(self.tokenizer, prefix + response + cue)
            )
            candidates.append(found[1] if found else None)
        pad_id = pad_token_id(self.tokenizer, self.model)
        device = next(self.model.parameters()).device
        size = max(1, self.batch_size)
        out: list[dict[str, float] | None] = []
        for start in range(0, len(rows), size):
            ids, mask = left_pad(rows[start : start + size], pad_id, device)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)
                ).logits[:, -1, :]  # (batch, vocab)
            for offset, row_logits in enumerate(logits.float()):
                tokens = candidates[start + offset]
                if tokens is None:
                    out.append(None)
                    continue
                picked = torch.log_softmax(row_logits[tokens], dim=-1)  # (labels,)
                out.append(dict(zip(labels[start + offset], map(float, picked), strict=True)))
        return out


def _label_tokens(tokenizer: Any, labels: Sequence[str]) -> tuple[str, list[int]] | None:
    """The cue and the first token of each label after it: " A", " B", ... after "The
    answer is", or "A", "B" after "The answer is " for tokenizers that split the space off.
    None when the labels do not start with distinct tokens."""
    for cue, lead in ((FORCED_CHOICE_CUE, " "), (FORCED_CHOICE_CUE + " ", "")):
        firsts = [encode_text(tokenizer, lead + label)[:1] for label in labels]
        if all(firsts) and len({f[0] for f in firsts}) == len(firsts):
            return cue, [f[0] for f in firsts]
    return None
