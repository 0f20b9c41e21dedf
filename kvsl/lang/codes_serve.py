"""Diagnostic codes KVS800-KVS819, owned by `kvsl serve` (plain data; see kvsl.lang.codes).

These are start-up errors of the server (options, the styles it is given, the address it
listens on). Errors in a request are not diagnostics: the server answers them with an
OpenAI-shaped JSON error and a status code (see docs/serve.md).
"""

from __future__ import annotations

from kvsl.lang.code_entry import Code
from kvsl.lang.diagnostics import Severity

SERVE_CODES: tuple[Code, ...] = (
    Code(
        "KVS800",
        "styles for different models",
        Severity.ERROR,
        "`kvsl serve` serves one model, and every style it is given must have been built for "
        "that model: each spec's `model =` (or each artifact's recorded model) must name the "
        "same model as the others and as `--model`, if given. Serve styles of other models "
        "from another `kvsl serve` process on another port.",
        "kvsl serve specs/step_by_step.kvs specs/qwen_style.kvs",
        "kvsl serve specs/step_by_step.kvs specs/causal_chain.kvs",
    ),
    Code(
        "KVS801",
        "two styles with one name",
        Severity.ERROR,
        "Each served style becomes a model id, `MODEL:STYLE`, so two specs or artifacts that "
        "declare the same style name cannot be served together: a request could not say "
        "which one it means.",
        "kvsl serve specs/step_by_step.kvs my/step_by_step_copy.kvs",
        "kvsl serve specs/step_by_step.kvs my/step_by_step_v2.kvs   # style \"step-by-step-v2\"",
    ),
    Code(
        "KVS802",
        "invalid server option",
        Severity.ERROR,
        "A limit or setting of `kvsl serve` is out of its range: the port must be 0..65535 "
        "(0 picks a free one), every limit (`--max-batch`, `--max-queue`, `--max-prompt-tokens`, "
        "`--max-new-tokens`, `--max-body-bytes`) at least 1, `--max-coefficient` greater than 0, "
        "`--gather-ms` not negative and `--batching` continuous or dynamic.",
        "kvsl serve step-by-step --max-batch 0",
        "kvsl serve step-by-step --max-batch 16",
    ),
    Code(
        "KVS803",
        "cannot listen on the address",
        Severity.ERROR,
        "The server could not open its socket: the port is taken by another process, the "
        "host name does not resolve, or the address does not belong to this machine.",
        "kvsl serve step-by-step --port 8000   # while another server uses port 8000",
        "kvsl serve step-by-step --port 8001",
    ),
    Code(
        "KVS804",
        "open to the network without an API key",
        Severity.WARNING,
        "`--host` is not a loopback address, so other machines can reach the server, and no "
        "API key is set: anyone who can reach it can use the model. Set `--api-key` or the "
        "`KVSL_API_KEY` environment variable (clients then send `Authorization: Bearer KEY`).",
        "kvsl serve step-by-step --host 0.0.0.0",
        "KVSL_API_KEY=$(openssl rand -hex 16) kvsl serve step-by-step --host 0.0.0.0",
    ),
    Code(
        "KVS805",
        "continuous batching is not available for this model",
        Severity.WARNING,
        "Continuous batching decodes in kvsl's own loop, one token per row per step, and "
        "merges the caches of requests that join the running batch. It needs a cache of plain "
        "per-layer key and value tensors (no sliding-window or linear-attention layers) and a "
        "generation config with nothing but what kvsl's settings control (no "
        "`suppress_tokens`, `bad_words_ids`, `min_length`, ...), or its rows would not decode "
        "as `kvsl run` does. Otherwise the server falls back to dynamic batching (requests "
        "that arrive together are generated together, then the next batch): it serves the "
        "same answers, with less throughput when requests arrive at different times.",
        "kvsl serve --model google/gemma-2-2b-it          # sliding-window layers",
        "kvsl serve --model google/gemma-2-2b-it --batching dynamic",
    ),
)
