"""Diagnostic codes KVS450-KVS499, owned by `kvsl run` and steering (plain data; see kvsl.lang.codes)."""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

RUN_CODES: tuple[Code, ...] = (
    Code(
        "KVS450",
        "invalid layer selection",
        Severity.ERROR,
        "The `--layers` option takes a comma-separated list of layer indices and inclusive "
        "ranges, the same selection a spec's `steer { layers = [...] }` takes: `3`, `1..8`, "
        "`1..` (1 and up), `-4..-1` (counted from the end), or `all`. Anything else cannot be "
        "resolved against the model and is rejected before the model is loaded.",
        "kvsl run specs/step_by_step.kvs --layers 1-8 --prompt 'What is 7 * 8?'",
        "kvsl run specs/step_by_step.kvs --layers 1..8 --prompt 'What is 7 * 8?'",
    ),
    Code(
        "KVS451",
        "layer outside the model",
        Severity.ERROR,
        "A steered layer (from `--layers` or from the spec) does not exist in the model the "
        "vectors were built for. Layers are counted from 0; negative indices count from the "
        "end, so -1 is the last layer.",
        "kvsl run specs/step_by_step.kvs --layers 40 --prompt 'Why is the sky blue?'",
        "kvsl run specs/step_by_step.kvs --layers -1 --prompt 'Why is the sky blue?'",
    ),
    Code(
        "KVS452",
        "no prompt given",
        Severity.ERROR,
        "`kvsl run` needs something to generate from: `--prompt TEXT` (repeatable), "
        "`--file prompts.jsonl`, or prompts piped on standard input (one per line, or JSON "
        "lines). Standard input that is a terminal, or that is empty, gives no prompts; an "
        "empty or blank `--prompt` (an unset shell variable) is refused too.",
        "kvsl run specs/step_by_step.kvs",
        "kvsl run specs/step_by_step.kvs --prompt 'Why is the sky blue?'",
    ),
    Code(
        "KVS453",
        "prompt file cannot be read",
        Severity.ERROR,
        "The file named by `--file` does not exist, is a directory, or is not UTF-8 text.",
        "kvsl run specs/step_by_step.kvs --file missing.jsonl",
        "kvsl run specs/step_by_step.kvs --file prompts.jsonl",
    ),
    Code(
        "KVS454",
        "invalid prompt line",
        Severity.ERROR,
        'Each non-empty line of a prompt file is either a JSON object with a string `"prompt"` '
        "field (other fields are kept in JSON output) or a JSON string. A line that is not "
        "JSON, an object without a string `prompt`, or an empty prompt is reported with its line "
        "number.",
        '{"question": "Why is the sky blue?"}',
        '{"prompt": "Why is the sky blue?"}',
    ),
    Code(
        "KVS455",
        "not a spec or an artifact",
        Severity.ERROR,
        "`kvsl run` takes a `.kvs` spec (built first if its vectors are missing or stale) or "
        "the path of an artifact written by `kvsl build`. The path given does not exist.",
        "kvsl run specs/step-by-step.kvs --prompt 'Why?'",
        "kvsl run specs/step_by_step.kvs --prompt 'Why?'",
    ),
    Code(
        "KVS456",
        "artifact has no plan",
        Severity.ERROR,
        "Running an artifact directly needs the plan it was built from (model, layers, "
        "coefficients, generation defaults), which `kvsl build` stores in the artifact's "
        "manifest. This artifact's manifest has none, or an unreadable one; run the spec "
        "instead, which rebuilds the artifact with a complete manifest.",
        "kvsl run old-artifact.safetensors --prompt 'Why?'",
        "kvsl run specs/step_by_step.kvs --prompt 'Why?'",
    ),
    Code(
        "KVS457",
        "invalid generation option",
        Severity.ERROR,
        "A generation option is out of range: `--max-new-tokens` and `--batch-size` must be at "
        "least 1, `--temperature` greater than 0, `--top-p` in (0, 1], and `--format` one of "
        "`text`, `json`, `jsonl`.",
        "kvsl run specs/step_by_step.kvs --sample --temperature 0 --prompt 'Why?'",
        "kvsl run specs/step_by_step.kvs --sample --temperature 0.7 --prompt 'Why?'",
    ),
    Code(
        "KVS458",
        "vectors do not fit the model",
        Severity.ERROR,
        "Steering vectors have one (kv_heads, head_dim) key and value vector per layer of the "
        "model they were extracted from. The model given to the Python API has a different "
        "number of layers or a different KV geometry, so the vectors cannot be added to its "
        "cache. `kvsl run` checks the model identity first and reports a KVS4xx artifact "
        "error; this code is the Python API's last line of defence.",
        "kvsl.generate(other_model, tokenizer, 'Why?', kvsl.load_artifact(path))",
        "kvsl.generate(model_it_was_built_for, tokenizer, 'Why?', kvsl.load_artifact(path))",
    ),
    Code(
        "KVS459",
        "model has no standard KV cache",
        Severity.ERROR,
        "KV-cache steering edits the per-layer key and value tensors of a transformers "
        "`DynamicCache`, at the index of the last prompt token. After the prefill this "
        "model's cache has no such tensors (a state-space, linear-attention or otherwise "
        "non-standard cache), or its layers are of a kind whose last slot is not the last "
        "token (a static cache's preallocated buffer, `cache_implementation=\"static\"`), "
        "so it cannot be steered this way.",
        'model = "state-spaces/mamba-130m-hf"',
        'model = "HuggingFaceTB/SmolLM2-135M-Instruct"',
    ),
    Code(
        "KVS460",
        "prompt does not end with the offset token",
        Severity.ERROR,
        "The steering convention edits the cache at the last prompt token and starts "
        "generation by feeding one offset token after it. Inside `kvsl.steered(...)` every "
        "prompt passed to `model.generate` must therefore end with the offset token the "
        "vectors were extracted with; `kvsl.steering_inputs(...)` builds such inputs.",
        "with kvsl.steered(model, vectors, tokenizer=tok): model.generate(**tok(text, return_tensors='pt'))",
        "with kvsl.steered(model, vectors, tokenizer=tok): model.generate(**kvsl.steering_inputs(tok, text, vectors))",
    ),
    Code(
        "KVS461",
        "no coefficients to steer with",
        Severity.ERROR,
        "The Python API was called without `coefficients`, and the vectors' manifest does not "
        "record the spec's recommended coefficients either (vectors built by hand). Pass "
        "`coefficients={layer: (c_k, c_v), ...}`.",
        "kvsl.generate(model, tok, 'Why?', hand_made_vectors)",
        "kvsl.generate(model, tok, 'Why?', hand_made_vectors, coefficients={1: (0.0, 6.0)})",
    ),
    Code(
        "KVS462",
        "steered generation needs a cache",
        Severity.ERROR,
        "Inside `kvsl.steered(...)` the edit is made in the cache that the prefill fills; a "
        "generation or forward pass with `use_cache=False` has no cache to edit.",
        "with kvsl.steered(model, vectors): model.generate(**inputs, use_cache=False)",
        "with kvsl.steered(model, vectors): model.generate(**inputs)",
    ),
    Code(
        "KVS463",
        "generation longer than the model's context",
        Severity.ERROR,
        "A prompt and the tokens generated after it must fit in the model's context "
        "(`max_position_embeddings` in its config): past it, a model with learned positions "
        "fails and a rotary one generates from positions it was never trained on. The "
        "longest prompt's tokens (with the offset token and any assistant prefix) plus "
        "`--max-new-tokens` exceed it, so nothing is generated. `kvsl serve` refuses the "
        "same request with `context_length_exceeded`.",
        "kvsl run specs/step_by_step.kvs --max-new-tokens 100000 --prompt 'Why?'",
        "kvsl run specs/step_by_step.kvs --max-new-tokens 512 --prompt 'Why?'",
    ),
    Code(
        "KVS464",
        "prompt is not UTF-8 text",
        Severity.ERROR,
        "A `--prompt` argument or the prompts piped on standard input hold bytes that are "
        "not UTF-8 (a file in another encoding, or binary data). The tokenizer takes text "
        "only, so nothing is generated; convert the input to UTF-8 first (`iconv -f "
        "latin1 -t utf-8`).",
        "printf 'caf\\xe9?' | kvsl run specs/step_by_step.kvs",
        "printf 'caf\\xc3\\xa9?' | kvsl run specs/step_by_step.kvs",
    ),
    Code(
        "KVS470",
        "model has no chat template",
        Severity.WARNING,
        "Contrast prompts and steered prompts go through the tokenizer's chat template, with "
        "the generation prompt on. This model's tokenizer has none (a base model, or a "
        "directory saved without `tokenizer_config.json`'s `chat_template`), so kvsl lays the "
        "messages out as plain `role: content` lines ending in `assistant:`. That works, and "
        "the artifact records the tokenizer it was built with, but an instruction-tuned "
        "model steers best with the template it was trained on. Said when the model loads; "
        "nothing stops.",
        'model = "openai-community/gpt2"',
        'model = "HuggingFaceTB/SmolLM2-135M-Instruct"',
    ),
)
