"""Tiny random Llama / Qwen2 models with an offline word-level chat tokenizer.

Used by the steering tests, where readable prompts ("w1 w2 w3") make cache positions easy to
reason about; `tiny_models` has the byte-level kit the extraction tests use.

Hidden size 64, 3 layers, grouped-query attention (4 query heads, 2 KV heads): fast on CPU,
and every shape the method touches is non-trivial.
"""

from __future__ import annotations

from functools import cache

import torch

from kvsl.engine.vectors import SteeringVectors

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "\n"] + [
    f"w{i}" for i in range(120)
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
PROMPTS = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9 w10 w11", "w12 w13"]


@cache
def tokenizer():
    """Words `w0`..`w119` and "\\n" are single tokens; decode joins tokens with spaces."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r"[ \t]+"), "removed"), pre_tokenizers.Split(Regex(r"\n"), "isolated")]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def model(arch: str = "llama", seed: int = 0):
    """A fresh tiny random model in eval mode (float32, CPU)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(
        vocab_size=len(WORDS),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**common)).eval()
    return Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False)).eval()


def vectors(scale: float = 1.0, seed: int = 1, num_layers: int = 3, kv_heads: int = 2,
            head_dim: int = 16) -> SteeringVectors:
    """Random steering vectors with the tiny models' geometry, offset token "\\n"."""
    gen = torch.Generator().manual_seed(seed)
    keys = {i: scale * torch.randn(kv_heads, head_dim, generator=gen) for i in range(num_layers)}
    values = {i: scale * torch.randn(kv_heads, head_dim, generator=gen) for i in range(num_layers)}
    return SteeringVectors(keys, values, offset_token="\n")
