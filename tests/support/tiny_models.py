"""The tiny-model kit for tests: random Llama / Qwen2 models, two offline tokenizers, plans.

Nothing is downloaded. Every model comes from one builder, `tiny_model`: hidden size 64,
grouped-query attention (4 query heads, 2 KV heads, head_dim 16), untied embeddings, eval mode,
float32 on the CPU. Two tokenizers go with it, both with a chat template:

- the byte kit (extraction, build, run and eval tests): `byte_tokenizer()` has one token per
  byte, so "\\n" is a single token, and a ChatML template; `make_tiny_model(arch)` is a
  2-layer model with it, as a `(model, tokenizer)` pair.
- the word kit (steering tests, where readable prompts make cache positions easy to follow):
  `word_tokenizer()` makes `w0`..`w119` and "\\n" (id 7) single tokens; `word_model(arch)` is a
  3-layer model over that vocabulary, `word_vectors()` random steering vectors that fit it;
  `WORD_PROMPTS` are prompts of 1 to 7 words.

`random_vectors(model_or_geometry)` gives steering vectors of any geometry; `TINY_TRACES` and
`make_plan` give a trace set and a `Plan` without a spec file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import torch

from kvsl.engine.models import KVGeometry, kv_geometry
from kvsl.engine.vectors import SteeringVectors

# Both vocabularies put padding, begin and end at ids 0, 1 and 2; the model configs say so.
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2

_CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_BYTE_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "\n"] + [
    f"w{i}" for i in range(120)
]
_WORD_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
WORD_PROMPTS = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9 w10 w11", "w12 w13"]
WORD_LAYERS = 3
# The KV cache of `word_model()`: what `random_vectors(WORD_GEOMETRY)` fits.
WORD_GEOMETRY = KVGeometry(num_layers=WORD_LAYERS, kv_heads=2, head_dim=16)


def _fast_tokenizer(core: Any, template: str, *, bos: str, eos: str, pad: str, unk: str) -> Any:
    """Wrap a `tokenizers.Tokenizer` for transformers, with a chat template."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk
    )
    tokenizer.chat_template = template
    return tokenizer


def byte_tokenizer() -> Any:
    """A byte-level BPE tokenizer without merges: 3 special tokens + 256 byte tokens.

    A fresh one each call (tests may change it).

    >>> len(byte_tokenizer())
    259
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(_BYTE_SPECIALS)}
    vocab.update({ch: i + len(_BYTE_SPECIALS) for i, ch in enumerate(byte_chars)})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(_BYTE_SPECIALS)
    return _fast_tokenizer(
        core, _CHATML_TEMPLATE,
        bos="<|im_start|>", eos="<|im_end|>", pad="<|endoftext|>", unk="<|endoftext|>",
    )


@cache
def word_tokenizer() -> Any:
    """Words `w0`..`w119` and "\\n" are single tokens; decode joins tokens with spaces.

    Shared between calls (built once).

    >>> word_tokenizer()("w1 w2\\n").input_ids
    [9, 10, 7]
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[ \t]+"), "removed"),
            pre_tokenizers.Split(Regex(r"\n"), "isolated"),
        ]
    )
    return _fast_tokenizer(core, _WORD_TEMPLATE, bos="<s>", eos="</s>", pad="<pad>", unk="<unk>")


def tiny_model(arch: str, *, vocab_size: int, num_layers: int, seed: int = 0) -> Any:
    """A tiny random causal LM ("llama" or "qwen2") in eval mode: the one model builder.

    The weights depend only on (arch, vocab_size, num_layers, seed), so two calls with the
    same arguments give identical models.

    >>> tiny_model("qwen2", vocab_size=128, num_layers=3).config.num_key_value_heads
    2
    """
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}
    if arch not in classes:
        raise ValueError(arch)
    config_class, model_class = classes[arch]
    config = config_class(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return model_class(config).eval()


def make_tiny_model(arch: str, seed: int = 0, num_layers: int = 2) -> tuple[Any, Any]:
    """The byte kit: a tiny random model over `byte_tokenizer()`, with that tokenizer.

    >>> model, tokenizer = make_tiny_model("llama")
    >>> model.config.num_hidden_layers, model.config.vocab_size
    (2, 259)
    """
    tokenizer = byte_tokenizer()
    return tiny_model(arch, vocab_size=len(tokenizer), num_layers=num_layers, seed=seed), tokenizer


def word_model(arch: str = "llama", seed: int = 0) -> Any:
    """The word kit: a fresh 3-layer random model over `word_tokenizer()`'s 128 words.

    >>> kv_geometry(word_model("qwen2")) == WORD_GEOMETRY
    True
    """
    return tiny_model(arch, vocab_size=len(WORDS), num_layers=WORD_LAYERS, seed=seed)


def random_vectors(like: Any, seed: int = 1, scale: float = 1.0) -> SteeringVectors:
    """Random `SteeringVectors` for every layer of a model or a `KVGeometry`, offset "\\n".

    >>> random_vectors(WORD_GEOMETRY, scale=2.0).num_layers
    3
    >>> from dataclasses import replace
    >>> random_vectors(replace(WORD_GEOMETRY, kv_heads=4)).geometry
    (4, 16)
    """
    geometry = like if isinstance(like, KVGeometry) else kv_geometry(like)
    gen = torch.Generator().manual_seed(seed)
    shape = (geometry.kv_heads, geometry.head_dim)
    keys = {i: scale * torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
    values = {i: scale * torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
    return SteeringVectors(keys, values, "\n", {"vector_hash": f"random-{seed}-{scale}"})


def word_vectors(scale: float = 1.0, seed: int = 1) -> SteeringVectors:
    """The word kit: `random_vectors` that fit `word_model()` (3 layers, 2 KV heads of 16).

    >>> word_vectors(scale=2.0).geometry
    (2, 16)
    """
    return random_vectors(WORD_GEOMETRY, seed=seed, scale=scale)


TINY_TRACES = [
    {"id": f"t{i}", "question": q, "steps": s, "answer": a}
    for i, (q, s, a) in enumerate(
        [
            ("What is 2 + 3?", ["Start with 2.", "Add 3 to get 5."], "5"),
            ("What is 4 * 2?", ["4 times 2 is 8."], "8"),
            ("Is ice cold?", ["Ice is frozen water.", "Frozen things are cold."], "yes"),
            ("What color is the sky?", ["On a clear day the sky scatters blue light."], "blue"),
            ("What is 10 - 7?", ["Take 7 from 10.", "That leaves 3."], "3"),
            ("Do fish swim?", ["Fish live in water.", "They move by swimming."], "yes"),
            ("What is 9 / 3?", ["3 goes into 9 three times."], "3"),
            ("Which is bigger, 5 or 2?", ["5 is more than 2."], "5"),
        ]
    )
]


def make_plan(
    traces: Path,
    *,
    pairs: int = 4,
    shots: int = 1,
    selection: str = "random",
    seed: int = 0,
    model_name: str = "tiny-llama",
    spec_path: Path | None = None,
    precision: str = "fp32",
    batch_size: int | None = None,
    questions: Path | None = None,
    question_format: str | None = None,
    prefix: str = "",
):
    """A Plan built directly (no spec file needed) over a trace file (and a query pool)."""
    import hashlib

    from kvsl.lang.plan import (
        ContrastPlan,
        ExtractPlan,
        GeneratePlan,
        ModelRef,
        Plan,
        SteerPlan,
    )

    spec = spec_path or traces.parent / "style.kvs"
    return Plan.create(
        style="tiny-style",
        description="a test style",
        spec_path=str(spec),
        model=ModelRef(model_name, "directory", f"/tiny/{model_name}"),
        teacher=None,
        contrast=ContrastPlan(
            traces=str(traces),
            traces_sha256=hashlib.sha256(traces.read_bytes()).hexdigest(),
            pairs=pairs,
            shots=shots,
            selection=selection,  # type: ignore[arg-type]
            seed=seed,
            questions=str(questions) if questions else None,
            questions_sha256=hashlib.sha256(questions.read_bytes()).hexdigest() if questions else "",
            question_format=question_format,  # type: ignore[arg-type]
        ),
        extract=ExtractPlan(precision=precision, batch_size=batch_size, prefix=prefix),  # type: ignore[arg-type]
        steer=SteerPlan(),
        generate=GeneratePlan(),
    )


def tiny_spec(
    model: str | Path,
    *,
    style: str = "tiny",
    description: str = "a test style",
    traces: str | Path = "traces.jsonl",
    pairs: int = 4,
    value: float = 6,
    max_new_tokens: int | None = None,
) -> str:
    """The text of a small `.kvs` spec: 1 shot, random demos, seed 0, layers 1 and up, c_k = 0.

    >>> 'pairs = 3' in tiny_spec("/models/tiny", pairs=3)
    True
    """
    generate = (
        f"  generate {{\n    max_new_tokens = {max_new_tokens}\n    mode = greedy\n  }}\n"
        if max_new_tokens is not None
        else ""
    )
    return (
        f'style "{style}" {{\n  description = "{description}"\n  model = "{model}"\n'
        f'  contrast {{\n    traces = "{traces}"\n    pairs = {pairs}\n    shots = 1\n'
        "    select = random\n    seed = 0\n  }\n"
        f"  steer {{\n    layers = [1..]\n    key = 0\n    value = {value:g}\n  }}\n"
        f"{generate}}}\n"
    )


def word_style_edits(model: Any) -> tuple[Any, Any]:
    """Two different steering edits for a word model: style A (value 4 on layers 1-2) and
    style B (key 1, value -3 on layer 1), for tests that mix styles in one batch."""
    from kvsl.engine.steer import resolve_edit

    geometry = kv_geometry(model)
    style_a = resolve_edit(word_vectors(scale=2.0, seed=1), {1: (0.0, 4.0), 2: (0.0, 4.0)}, geometry)
    style_b = resolve_edit(word_vectors(scale=2.0, seed=5), {1: (1.0, -3.0)}, geometry)
    return style_a, style_b
