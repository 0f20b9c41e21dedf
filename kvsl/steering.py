"""The Python API: steer any Hugging Face causal LM with a kvsl artifact.

    import kvsl
    from transformers import AutoModelForCausalLM, AutoTokenizer

    vectors = kvsl.load_artifact(".kvsl/artifacts/<hash>")         # from `kvsl build`
    texts = kvsl.generate(model, tokenizer, "Why is the sky blue?", vectors)

    # or around your own `generate` call:
    inputs = kvsl.steering_inputs(tokenizer, ["Why is the sky blue?"], vectors)
    with kvsl.steered(model, vectors, tokenizer=tokenizer):
        out = model.generate(**inputs, max_new_tokens=64)

Coefficients are `{layer: (c_k, c_v)}`; left out, they are the spec's (recorded in the
artifact's manifest). `import kvsl` stays light: torch is imported when these are first used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from kvsl.engine.artifact import load_artifact
    from kvsl.engine.steer import CacheEdit
    from kvsl.engine.vectors import SteeringVectors
    from kvsl.lang.plan import GenerationSettings

__all__ = ["SteeringVectors", "generate", "load_artifact", "steered", "steering_inputs"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports, so that importing this module does not import torch.
    if name == "SteeringVectors":
        from kvsl.engine.vectors import SteeringVectors

        return SteeringVectors
    if name == "load_artifact":
        from kvsl.engine.artifact import load_artifact

        return load_artifact
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _system_prompt(vectors: SteeringVectors | None, system_prompt: str | None) -> str | None:
    """The caller's system prompt, else the one the vectors were extracted with."""
    if system_prompt is not None or vectors is None:
        return system_prompt
    from kvsl.engine.artifact import recorded_system_prompt

    return recorded_system_prompt(vectors.manifest)


def _offset_id(tokenizer: Any, vectors: SteeringVectors) -> int:
    from kvsl.engine.prompting import offset_token_id

    return offset_token_id(tokenizer, vectors.offset_token)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: str | Sequence[str],
    vectors: SteeringVectors | None = None,
    *,
    coefficients: Mapping[int, tuple[float, float]] | None = None,
    max_new_tokens: int = 256,
    sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.9,
    seed: int = 0,
    stop: Sequence[str] = (),
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    min_new_tokens: int = 0,
    top_k: int = 0,
    settings: GenerationSettings | None = None,
    system_prompt: str | None = None,
    batch_size: int = 8,
    streamer: Any = None,
) -> list[str]:
    """Generate a steered continuation of each prompt (chat template, generation prompt on).

    `vectors=None` is plain generation from the chat prompt. Otherwise the prompt (ending
    in the vectors' prefix when they were extracted with one, `extract.prefix`) is
    prefilled, `c·S` is added at its last position in the layers of `coefficients`, and
    generation starts by feeding the vectors' offset token. All-zero coefficients skip the
    edit and give exactly what steering with coefficient 0 gives (tested token for token).
    Greedy unless `sample`; `seed` makes sampling reproducible. Text is cut before the
    first `stop` string. `repetition_penalty`, `no_repeat_ngram_size`, `min_new_tokens` and
    `top_k` are transformers' own decoding controls (see `kvsl.lang.plan.GenerationSettings`);
    `settings`, when given, replaces every decoding keyword (e.g. a plan's `generate`).
    `streamer` (e.g. `kvsl.engine.generate.TokenStreamer`) needs one prompt.

    >>> # kvsl.generate(model, tok, "What is 7 * 8?", vectors, coefficients={1: (0.0, 6.0)})
    >>> # ['To find 7 * 8, ...']
    """
    from kvsl.engine.generate import chat_prompt
    from kvsl.engine.models import kv_geometry
    from kvsl.engine.offline import generate_texts
    from kvsl.engine.steer import coefficients_from_manifest, resolve_edit
    from kvsl.lang.plan import GenerationSettings

    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    system = _system_prompt(vectors, system_prompt)
    prefix = vectors.prefix if vectors is not None else ""
    ids = [chat_prompt(tokenizer, text, system, prefix) for text in texts]
    if settings is None:
        settings = GenerationSettings(
            max_new_tokens=max_new_tokens,
            sample=sample,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=tuple(stop),
            repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            min_new_tokens=min_new_tokens,
            top_k=top_k,
        )
    offset_id: int | None = None
    edit: CacheEdit | None = None
    if vectors is not None:
        offset_id = _offset_id(tokenizer, vectors)
        if coefficients is None:
            coefficients = coefficients_from_manifest(vectors)
        edit = resolve_edit(vectors, coefficients, kv_geometry(model))
        if edit.is_empty:
            edit = None  # plain generation from T + [o]: identical, one forward pass cheaper
    return generate_texts(
        model,
        tokenizer,
        ids,
        settings=settings,
        offset_id=offset_id,
        edit=edit,
        batch_size=batch_size,
        streamer=streamer,
    )


def steering_inputs(
    tokenizer: Any,
    prompts: str | Sequence[str],
    vectors: SteeringVectors,
    *,
    system_prompt: str | None = None,
    device: Any = None,
) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask` for `model.generate` inside `steered`: chat prompt
    `T`, the vectors' prefix (if any), then the offset token, left-padded.

    >>> # inputs = kvsl.steering_inputs(tok, ["Why?", "How?"], vectors)
    >>> # inputs["input_ids"].shape  → (2, longest T + 1)
    """
    from kvsl.engine.generate import chat_prompt
    from kvsl.engine.inputs import left_pad

    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    system = _system_prompt(vectors, system_prompt)
    offset = _offset_id(tokenizer, vectors)
    rows = [[*chat_prompt(tokenizer, text, system, vectors.prefix), offset] for text in texts]
    # Pad ids never reach the model's attention (mask 0); any id in the vocabulary will do.
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    ids, mask = left_pad(rows, int(pad), device or "cpu")
    return {"input_ids": ids, "attention_mask": mask}


@contextmanager
def steered(
    model: Any,
    vectors: SteeringVectors,
    coefficients: Mapping[int, tuple[float, float]] | None = None,
    *,
    tokenizer: Any = None,
) -> Iterator[CacheEdit]:
    """Steer every `model.generate` (or prefill forward pass) inside the block.

    On entry `model.forward` is wrapped (this instance only); on exit, even after an error,
    the original is restored. A prefill (more than one token into an empty cache) is run as
    two passes: the prompt without its last token fills the cache, `c·S` is added at that
    cache's last position, then the last token (the offset token) is fed. Decoding steps
    pass straight through: no per-token cost. Inputs must end with the offset token (build
    them with `steering_inputs`); with `tokenizer` given, inputs that do not are refused
    (KVS460). Yields the resolved `CacheEdit`.

    >>> # with kvsl.steered(model, vectors, {1: (0.0, 6.0)}, tokenizer=tok):
    >>> #     out = model.generate(**kvsl.steering_inputs(tok, "Why?", vectors))
    """
    from kvsl.engine.steer import steered as steer_forward

    offset = _offset_id(tokenizer, vectors) if tokenizer is not None else None
    with steer_forward(model, vectors, coefficients, offset_token_id=offset) as edit:
        yield edit
