"""Helpers for engine tests: tiny random models, a byte-level tokenizer, plans (no downloads).

`make_tiny_model(arch)` returns `(model, tokenizer)`: a 2-layer causal LM with
grouped-query attention (4 query heads, 2 KV heads, head_dim 16) and a byte-level
tokenizer (every byte is one token, so "\\n" is a single token) with a ChatML chat
template.
"""

from __future__ import annotations

from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_tokenizer():
    """A byte-level BPE tokenizer without merges: 256 byte tokens + 3 special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({ch: i + len(SPECIAL_TOKENS) for i, ch in enumerate(byte_chars)})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _config_kwargs(vocab_size: int, num_layers: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )


def make_tiny_model(arch: str, seed: int = 0, num_layers: int = 2):
    """A tiny random causal LM ("llama" or "qwen2") in eval mode, with its tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = make_tokenizer()
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**_config_kwargs(len(tokenizer), num_layers)))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**_config_kwargs(len(tokenizer), num_layers)))
    else:
        raise ValueError(arch)
    model.eval()
    return model, tokenizer


def random_vectors(model, seed: int = 1, scale: float = 1.0):
    """Random `SteeringVectors` with the model's KV geometry (all layers), offset "\\n"."""
    from kvsl.engine.models import kv_geometry
    from kvsl.engine.vectors import SteeringVectors

    geometry = kv_geometry(model)
    gen = torch.Generator().manual_seed(seed)
    shape = (geometry.kv_heads, geometry.head_dim)
    keys = {i: scale * torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
    values = {i: scale * torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
    return SteeringVectors(keys, values, "\n", {"vector_hash": f"random-{seed}-{scale}"})


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
):
    """A Plan built directly (no spec file needed) over a trace file."""
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
        ),
        extract=ExtractPlan(precision=precision, batch_size=batch_size),  # type: ignore[arg-type]
        steer=SteerPlan(),
        generate=GeneratePlan(),
    )
