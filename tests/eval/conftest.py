"""Fixtures for eval tests: a tiny random Llama with a byte-level chat tokenizer.

A local copy of the engine tests' builder (3 layers instead of 2, so that CAA can pick a
layer other than 0 and the llama.cpp export has a layer to write), kept here so that eval
tests do not depend on another test package's helpers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
# `KVSL_TEST_DEVICE=cuda` runs the model tests on a GPU (the identities must hold there too).
DEVICE = os.environ.get("KVSL_TEST_DEVICE", "cpu")

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


def make_tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model, tokenizer


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): a 3-layer random Llama (GQA 4/2, hidden 64), on `DEVICE`."""
    model, tokenizer = make_tiny_llama()
    return model.to(DEVICE), tokenizer


def random_vectors(model, seed: int = 1, scale: float = 1.0):
    """Random `SteeringVectors` with the model's KV geometry (all layers)."""
    from kvsl.engine.vectors import SteeringVectors

    cfg = model.config
    kv_heads, head_dim = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    gen = torch.Generator().manual_seed(seed)
    keys = {
        i: scale * torch.randn(kv_heads, head_dim, generator=gen)
        for i in range(cfg.num_hidden_layers)
    }
    values = {
        i: scale * torch.randn(kv_heads, head_dim, generator=gen)
        for i in range(cfg.num_hidden_layers)
    }
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
        ]
    )
]


@pytest.fixture
def traces_file(tmp_path) -> Path:
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    return path
