"""A folder for end-to-end tests against the reference (`reference_steering`): the tiny
word-kit Llama saved to disk, trace file in its vocabulary, and style specs over them.

The word tokenizer makes every word `w0`..`w119` and "\\n" one token, so a generated text
names its tokens one for one (decoding joins them with spaces), and a spec's system prompt
and prefix are easy to find in a prompt. `tiny_models.word_model` gives the same weights
for the same seed, so a test holds the very model its server or CLI loads from disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiny_models import EOS_ID, word_model, word_tokenizer

MODEL_DIR = "word-llama"
MODEL_SEED = 3

# Traces in the word tokenizer's vocabulary (words outside it, "The answer is", are <unk>).
WORD_TRACES = [
    {"id": f"r{i}", "question": q, "steps": s, "answer": a}
    for i, (q, s, a) in enumerate(
        [
            ("w10 w11 w12", ["w20 w21 w22", "w23 w24"], "w30"),
            ("w13 w14", ["w25 w26"], "w31"),
            ("w15 w16 w17 w18", ["w27", "w28 w29 w40", "w41"], "w32"),
            ("w19", ["w42 w43 w44 w45"], "w33"),
            ("w50 w51 w52", ["w46 w47", "w48"], "w34"),
            ("w53 w54 w55 w56 w57", ["w49 w60"], "w35"),
            ("w58 w59", ["w61 w62 w63", "w64 w65"], "w36"),
        ]
    )
]


def write_workspace(root: Path) -> tuple[Any, Any]:
    """Save the word Llama (seed `MODEL_SEED`) and its tokenizer to `root / MODEL_DIR`, the
    traces to `root / "traces.jsonl"`; returns the (model, tokenizer) saved."""
    model, tokenizer = word_model("llama", seed=MODEL_SEED), word_tokenizer()
    model.save_pretrained(root / MODEL_DIR)
    tokenizer.save_pretrained(root / MODEL_DIR)
    (root / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in WORD_TRACES), encoding="utf-8"
    )
    return model, tokenizer


def style_spec(
    root: Path,
    style: str,
    *,
    steer: str = "layers = [1..]\n    key = 0\n    value = 300",
    pairs: int = 5,
    shots: int = 2,
    seed: int = 0,
    system_prompt: str = "",
    prefix: str = "",
    precision: str = "fp32",
    max_new_tokens: int = 8,
) -> Path:
    """Write `root / f"{style}.kvs"` over the workspace's model and traces; its path.

    The vectors of a random model are small: the coefficients are large (hundreds).
    """
    system = f'    system_prompt = "{system_prompt}"\n' if system_prompt else ""
    prefixed = f'    prefix = "{prefix}"\n' if prefix else ""
    text = (
        f'style "{style}" {{\n  description = "kvsl against the reference"\n'
        f'  model = "{root / MODEL_DIR}"\n'
        f'  contrast {{\n    traces = "traces.jsonl"\n    pairs = {pairs}\n'
        f"    shots = {shots}\n    select = random\n    seed = {seed}\n{system}  }}\n"
        f"  extract {{\n    precision = {precision}\n{prefixed}  }}\n"
        f"  steer {{\n    {steer}\n  }}\n"
        f"  generate {{\n    max_new_tokens = {max_new_tokens}\n    mode = greedy\n  }}\n}}\n"
    )
    path = root / f"{style}.kvs"
    path.write_text(text, encoding="utf-8")
    return path


def stacked(vectors: Any) -> tuple[Any, Any]:
    """(layers, kv_heads, head_dim) keys and values of kvsl `SteeringVectors`."""
    import torch

    layers = range(vectors.num_layers)
    return (
        torch.stack([vectors.keys[i] for i in layers]),
        torch.stack([vectors.values[i] for i in layers]),
    )


def text_of(tokenizer: Any, ids: list[int]) -> str:
    """What a generation's token ids read as (end of sequence dropped, as kvsl decodes)."""
    return tokenizer.decode([i for i in ids if i != EOS_ID], skip_special_tokens=True)
