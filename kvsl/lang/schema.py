"""The key schema: every key a spec may write, where, and what it accepts.

A style's own keys are `STYLE_KEYS`; each block's are `BLOCK_KEYS[block]`; an
`at [layers] { ... }` override inside `steer` takes `OVERRIDE_KEYS`. The checker
(`kvsl.lang.analyze`) reads a file against these tables, the editor server (`kvsl.lsp`)
completes and documents keys from them, and lowering (`kvsl.lang.lower`) fills in what a
spec leaves out. A new key starts here (see docs/architecture.md, "Where a change goes").

The choices of a `choice` key that lowering hands to the plan are typed tuples of the
plan's own `Literal` types, so a choice the plan does not know cannot be added here alone.

>>> BLOCK_KEYS["contrast"]["select"].choices
('random', 'nearest')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kvsl.lang.plan import Precision, QuestionFormat, Selection

Kind = Literal["string", "int", "float", "choice", "layers", "strings", "regexes"]

SELECTIONS: tuple[Selection, ...] = ("random", "nearest")
QUESTION_FORMATS: tuple[QuestionFormat, ...] = ("gsm8k", "arc", "csqa", "piqa", "plain")
POSITIONS: tuple[Literal["last_token"], ...] = ("last_token",)
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")
MODES = ("greedy", "sample")


@dataclass(frozen=True)
class KeySpec:
    """What one key accepts. Bounds apply to numbers; `choices` to `choice` keys."""

    kind: Kind
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    minimum_exclusive: bool = False
    maximum: float | None = None


TOP = "style"  # the pseudo block name of a style's own keys
STYLE_KINDS = ("style", "base")  # the blocks that declare a style (a base has no plan)

STYLE_KEYS: dict[str, KeySpec] = {
    "description": KeySpec("string", "one sentence: what the style's reasoning looks like"),
    "extends": KeySpec(
        "string", "another spec (path relative to this one) whose values are defaults"
    ),
    "model": KeySpec(
        "string", "embedded short name, Hugging Face id, local directory or .gguf file"
    ),
    "markers": KeySpec("regexes", "regular expressions that mark the style in a generation"),
}

BLOCK_KEYS: dict[str, dict[str, KeySpec]] = {
    "teacher": {
        "model": KeySpec("string", "the teacher model's name at the endpoint"),
        "template": KeySpec("string", 'Jinja2 file relative to the spec, or an inline """block"""'),
        "traces": KeySpec("string", "the JSONL trace file the teacher fills"),
        "base_url": KeySpec("string", "an OpenAI-compatible endpoint (default: OpenAI's)"),
        "questions": KeySpec("string", "question source for `kvsl teach` (JSONL)"),
        "format": KeySpec("choice", "how questions are read", QUESTION_FORMATS),
        "temperature": KeySpec("float", "teacher sampling temperature", minimum=0),
        "max_tokens": KeySpec("int", "longest teacher answer in tokens", minimum=1),
        "concurrency": KeySpec("int", "requests in flight", minimum=1),
    },
    "contrast": {
        "traces": KeySpec("string", "JSONL trace file (default: the teacher's)"),
        "pairs": KeySpec("int", "N, the number of contrast pairs", minimum=1),
        "shots": KeySpec(
            "int", "k, demos per prompt (<= N - 1; with `questions`, <= the traces)", minimum=0
        ),
        "select": KeySpec("choice", "how demos are picked", SELECTIONS),
        "seed": KeySpec("int", "seed for demo selection", minimum=0),
        "system_prompt": KeySpec("string", "system prompt (default: the chat template's own)"),
        "questions": KeySpec("string", "query pool: the N target questions come from here"),
        "format": KeySpec("choice", "how the query pool is read", QUESTION_FORMATS),
    },
    "extract": {
        "position": KeySpec("choice", "which token is read", POSITIONS),
        "offset_token": KeySpec("string", "appended to each generation prompt (paper: newline)"),
        "prefix": KeySpec("string", "starts the answer in extraction and generation"),
        "precision": KeySpec("choice", "extraction precision", PRECISIONS),
        "batch_size": KeySpec("int", "prompts per forward pass", minimum=1),
    },
    "steer": {
        "layers": KeySpec("layers", "steered layers: [1..], [0, 2, 5..7], [-4..-1], all"),
        "key": KeySpec("float", "c_k, the key coefficient (keep 0: keys carry RoPE)"),
        "value": KeySpec("float", "c_v, the value coefficient"),
    },
    "generate": {
        "max_new_tokens": KeySpec("int", "longest generation in tokens", minimum=1),
        "mode": KeySpec("choice", "greedy or sampling", MODES),
        "temperature": KeySpec("float", "sampling temperature", minimum=0),
        "top_p": KeySpec(
            "float", "nucleus sampling mass", minimum=0, minimum_exclusive=True, maximum=1
        ),
        "seed": KeySpec("int", "sampling seed", minimum=0),
        "stop": KeySpec("strings", "stop strings"),
        # Decoding controls: transformers' own logits processors (GenerationConfig fields).
        "repetition_penalty": KeySpec(
            "float", "> 1 discourages repeating tokens (1 = off)", minimum=0, minimum_exclusive=True
        ),
        "no_repeat_ngram_size": KeySpec("int", "forbid repeating any n-gram (0 = off)", minimum=0),
        "min_new_tokens": KeySpec("int", "no end of text before this many tokens", minimum=0),
        "top_k": KeySpec("int", "sample from the k likeliest tokens (0 = off)", minimum=0),
    },
}

OVERRIDE_KEYS: dict[str, KeySpec] = {
    "key": BLOCK_KEYS["steer"]["key"],
    "value": BLOCK_KEYS["steer"]["value"],
}

# Keys whose string names a file (or, for `model`, may): what the operating system
# refuses in a file name is refused here, before any path function sees it.
PATH_KEYS = frozenset({"extends", "model", "template", "traces", "questions"})
