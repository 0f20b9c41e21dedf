"""An independent reference implementation of KV-cache steering, to test kvsl against.

Plain transformers + torch, one prompt at a time (no batching, no padding, no prefix
sharing), a `DynamicCache` edited by hand, a hand-written greedy loop. Nothing from kvsl is
imported. It is written from the project's brief (DEVELOPERS.md) and the paper's own code
(MaxBelitsky/cache-steering), not from kvsl's engine:

- Contrast prompts (`contrast_messages`, `chat_prompt_ids`): k demos as user/assistant
  turns, then the target question as the last user turn (`process_instruct_example`);
  positive demos answer with the teacher's steps, negative ones with the answer alone; both
  through the chat template with the generation prompt, then the prefix, if any (the
  paper's `add_prefix`: appended to the templated string).
- Extraction (`extract`): the cache of each contrast prompt at its last position, i.e. the
  last token of the generation prompt (+ prefix); the paper's `extract_steering_kv` reads
  index `attention_mask.sum(1) - 1` of the contrast prompt itself. Per layer, the mean over
  the N pairs of positive minus negative, shape (kv_heads, head_dim).
- Steering (`steered_greedy`): the generation input is `T + [o]`, the prompt with the
  offset token appended (`get_token_to_append`). The cache is prefilled with it minus its
  last token, i.e. with `T` (`precompute_kv_cache`); `c_k·S_k` / `c_v·S_v` are added at the
  cache's last position (`steer_kv_cache_layer`, index -1), which is the same token of the
  generation prompt the vectors were read at; then `o` is fed and decoding goes on normally.

kvsl's own documented conventions that the paper leaves open are followed where a test
compares against kvsl: demo text (steps one per line, then "The answer is X." on its own
line, docs/method.md) and coefficients applied in float32.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import DynamicCache

Messages = list[dict[str, str]]


def answer_sentence(answer: str) -> str:
    """The negative demo: "The answer is X.", with no second period after one the answer has.

    >>> answer_sentence("3.5."), answer_sentence(" B ")
    ('The answer is 3.5.', 'The answer is B.')
    """
    answer = answer.strip()
    return f"The answer is {answer}" if answer.endswith(".") else f"The answer is {answer}."


def demo_answers(trace: Mapping[str, Any]) -> tuple[str, str]:
    """(positive, negative) assistant turns for one demo trace.

    >>> demo_answers({"question": "Q?", "steps": ["A.", "B."], "answer": "7"})
    ('A.\\nB.\\nThe answer is 7.', 'The answer is 7.')
    """
    negative = answer_sentence(str(trace["answer"]))
    return "\n".join([*trace["steps"], negative]), negative


def contrast_messages(
    question: str, demos: Sequence[Mapping[str, Any]], system_prompt: str | None = None
) -> tuple[Messages, Messages]:
    """The positive and negative chat messages of one pair: k demos, then the question."""
    positive: Messages = []
    negative: Messages = []
    if system_prompt is not None:
        positive.append({"role": "system", "content": system_prompt})
        negative.append({"role": "system", "content": system_prompt})
    for demo in demos:
        pos_answer, neg_answer = demo_answers(demo)
        for messages, answer in ((positive, pos_answer), (negative, neg_answer)):
            messages.append({"role": "user", "content": demo["question"]})
            messages.append({"role": "assistant", "content": answer})
    positive.append({"role": "user", "content": question})
    negative.append({"role": "user", "content": question})
    return positive, negative


def chat_prompt_ids(tokenizer: Any, messages: Messages, prefix: str = "") -> list[int]:
    """`T`: the chat template with the generation prompt, tokenized, then the prefix's ids."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if prefix:
        ids += tokenizer(prefix, add_special_tokens=False)["input_ids"]
    return ids


def offset_id(tokenizer: Any, offset_token: str = "\n") -> int:
    """The id of the offset token, which must be one token."""
    ids = tokenizer(offset_token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"offset token {offset_token!r} is {len(ids)} tokens")
    return int(ids[0])


def _cache_kwarg(model: Any) -> str:
    """The keyword this transformers' forward takes the cache under."""
    names = inspect.signature(model.forward).parameters
    return "cache" if "cache" in names else "past_key_values"


def _row(model: Any, ids: Sequence[int]) -> torch.Tensor:
    """One row of input ids on the model's device: (1, seq)."""
    return torch.tensor([list(ids)], device=model.device)


def _prefill(model: Any, ids: Sequence[int]) -> tuple[Any, torch.Tensor]:
    """Run `ids` (one row) into a fresh cache; the cache and the last position's logits."""
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        out = model(_row(model, ids), use_cache=True, **{_cache_kwarg(model): cache})
    return cache, out.logits[0, -1]


def _layer_kv(cache: Any, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's cached keys and values: (batch, kv_heads, seq, head_dim) each."""
    entry = cache.layers[layer]
    return entry.keys, entry.values


def last_position_kv(model: Any, ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values cached at the last position of `ids`: (layers, kv_heads, head_dim)."""
    cache, _ = _prefill(model, ids)
    layers = [_layer_kv(cache, i) for i in range(len(cache.layers))]
    return (
        torch.stack([keys[0, :, -1, :] for keys, _ in layers]),
        torch.stack([values[0, :, -1, :] for _, values in layers]),
    )


def extract(
    model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over pairs of positive − negative (keys, values) at the last prompt token.

    Each pair is (positive ids, negative ids); the result is two float32 tensors of shape
    (layers, kv_heads, head_dim).
    """
    key_diffs, value_diffs = [], []
    for positive, negative in pairs:
        pos_k, pos_v = last_position_kv(model, positive)
        neg_k, neg_v = last_position_kv(model, negative)
        key_diffs.append((pos_k - neg_k).float())
        value_diffs.append((pos_v - neg_v).float())
    return torch.stack(key_diffs).mean(0).cpu(), torch.stack(value_diffs).mean(0).cpu()


def _eos_ids(model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}


def _greedy(
    model: Any,
    cache: Any,
    logits: torch.Tensor,
    seen: list[int],
    max_new_tokens: int,
    repetition_penalty: float,
) -> list[int]:
    """Greedy decoding from a filled cache whose last logits are `logits`.

    `seen` is every id the model has been fed (prompt included), as transformers'
    repetition penalty counts them. Stops after an end-of-sequence id (kept in the output).
    """
    eos = _eos_ids(model)
    out: list[int] = []
    for _ in range(max_new_tokens):
        scores = logits.float()
        if repetition_penalty != 1.0:
            ids = torch.tensor(sorted(set(seen + out)), device=scores.device)
            picked = scores[ids]
            scores = scores.clone()
            scores[ids] = torch.where(
                picked < 0, picked * repetition_penalty, picked / repetition_penalty
            )
        token = int(scores.argmax())
        out.append(token)
        if token in eos or len(out) == max_new_tokens:
            break
        with torch.no_grad():
            step = model(_row(model, [token]), use_cache=True, **{_cache_kwarg(model): cache})
        logits = step.logits[0, -1]
    return out


def plain_greedy(
    model: Any, ids: Sequence[int], max_new_tokens: int, repetition_penalty: float = 1.0
) -> list[int]:
    """Unsteered greedy continuation of `ids`, the whole prompt in one forward pass."""
    cache, logits = _prefill(model, ids)
    return _greedy(model, cache, logits, list(ids), max_new_tokens, repetition_penalty)


def steered_greedy(
    model: Any,
    prompt: Sequence[int],
    offset: int,
    keys: torch.Tensor,
    values: torch.Tensor,
    coefficients: Mapping[int, tuple[float, float]],
    max_new_tokens: int,
    repetition_penalty: float = 1.0,
    after: Sequence[int] = (),
) -> list[int]:
    """Steered greedy continuation of `prompt + [offset] + after`.

    `prompt` is `T` (without the offset token); `keys` / `values` are (layers, kv_heads,
    head_dim); `coefficients` maps a layer to (c_k, c_v). The cache is filled with `T`, the
    edit is added at its last position in those layers, then `offset` is fed, with `after`
    (kvsl eval's `cache+cot`: the CoT prefix after the offset token) in the same pass.
    """
    cache, _ = _prefill(model, prompt)
    for layer, (c_k, c_v) in coefficients.items():
        cached_keys, cached_values = _layer_kv(cache, layer)
        # (batch=1, kv_heads, seq, head_dim): the last position of T in this layer
        for cached, vector, c in ((cached_keys, keys, c_k), (cached_values, values, c_v)):
            delta = c * vector[layer].float()  # (kv_heads, head_dim), in float32
            cached[0, :, -1, :] += delta.to(device=cached.device, dtype=cached.dtype)
    with torch.no_grad():
        out = model(_row(model, [offset, *after]), use_cache=True, **{_cache_kwarg(model): cache})
    seen = [*prompt, offset, *after]
    return _greedy(model, cache, out.logits[0, -1], seen, max_new_tokens, repetition_penalty)
