"""`kvsl serve` against the independent reference implementation (reference_steering.py).

A real server subprocess on 127.0.0.1 serves two styles of the tiny word Llama: `alpha`
(value 300 on layers 1..) and `beta` (a system prompt, a prefix, per-range key and value
coefficients, other demos). A long greedy request decodes while six others, of other
lengths, styles and `kvsl` settings (value, key, layers), a coefficient 0 and the plain
model, arrive together and join its batch (continuous batching). Every answer is the
reference's greedy continuation, one prompt at a time, for that request's prompt and edit:

- the prompt is what the server makes of the chat messages: the chat template with the
  generation prompt, the style's system prompt first unless the messages have one, then
  the style's prefix (as the vectors were read: `extract { prefix }`), then the offset
  token; the plain model gets the template alone;
- the edit is the style's vectors (those the server built, equal to the reference's own)
  times the request's coefficients, on the request's layers;
- coefficient 0 is the reference's plain generation from `T + [o]`;
- a completion (`/v1/completions`) steers its text as given, plus the offset token.

The word tokenizer makes each word one token, so equal text is equal tokens; the usage
counts are compared too.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import reference_steering as ref
import torch
from serve_support import ServerProcess, environment, raw
from tiny_models import EOS_ID
from word_workspace import MODEL_DIR, stacked, style_spec, text_of, write_workspace

from kvsl.engine.artifact import load_artifact
from kvsl.engine.contrast import build_contrast_pairs
from kvsl.lang import load_plan

LONG = 300  # tokens of the request the others join; the tiny model decodes it for a while
BETA_SYSTEM, BETA_PREFIX = "w99 w98", "w90 w91"
# Each style's own coefficients, written out independently of the spec's resolution.
ALPHA = {1: (0.0, 300.0), 2: (0.0, 300.0)}
BETA = {1: (0.0, -200.0), 2: (100.0, 250.0)}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Any:
    root = tmp_path_factory.mktemp("serve-reference")
    model, tokenizer = write_workspace(root)
    style_spec(root, "alpha")
    style_spec(
        root,
        "beta",
        steer="layers = [1..]\n    key = 0\n    value = -200\n"
        "    at [-1..-1] { key = 100  value = 250 }",
        seed=4,
        system_prompt=BETA_SYSTEM,
        prefix=BETA_PREFIX,
    )
    process = ServerProcess(
        root,
        "alpha.kvs",
        "beta.kvs",
        "--max-coefficient",
        "1000",
        "--max-batch",
        "8",
        "--gather-ms",
        "0",
        "--max-new-tokens",
        str(LONG),
        env=environment(root),
    )
    yield {"root": root, "model": model, "tokenizer": tokenizer, "server": process}
    code, log = process.stop()
    assert code == 0, log
    assert "Traceback" not in log, log


def _vectors(root: Path, style: str) -> Any:
    [artifact] = (root / ".kvsl" / "artifacts").glob(f"{style}-*.safetensors")
    return load_artifact(artifact)


def _reference_vectors(served: dict[str, Any], style: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's vectors for kvsl's choice of targets and demos of `style`."""
    tokenizer = served["tokenizer"]
    plan = load_plan(served["root"] / f"{style}.kvs")
    system = plan.contrast.system_prompt
    pairs = []
    for pair in build_contrast_pairs(plan):
        demos = [{"question": d.question, "steps": d.steps, "answer": d.answer} for d in pair.demos]
        positive, negative = ref.contrast_messages(pair.target.question, demos, system)
        pairs.append(
            (
                ref.chat_prompt_ids(tokenizer, positive, plan.extract.prefix),
                ref.chat_prompt_ids(tokenizer, negative, plan.extract.prefix),
            )
        )
    return ref.extract(served["model"], pairs)


def _joined(server: ServerProcess) -> float:
    metrics = raw(server.port, "GET", "/metrics")[2]
    line = next(x for x in metrics.splitlines() if x.startswith("kvsl_rows_joined_running_total"))
    return float(line.split()[-1])


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# (model suffix, kvsl settings, chat messages or a completion's prompt text, max_tokens,
# the reference's layer → (c_k, c_v) or None for the plain model): joined into the running
# batch together.
REQUESTS: list[tuple[str, dict[str, Any] | None, Any, int, Any]] = [
    (":alpha", {"value": 150, "key": 50, "layers": "2"}, _user("w9"), 6, {2: (50.0, 150.0)}),
    (
        ":alpha",
        {"layers": [0, 2], "value": -300},
        _user("w82 w83 w84"),
        10,
        {0: (0.0, -300.0), 2: (0.0, -300.0)},
    ),
    (":beta", None, _user("w70 w71 w72 w73 w74 w75 w76 w77"), 14, BETA),
    (
        ":beta",
        {"value": 0, "key": 0},
        _user("w70 w71 w72 w73 w74 w75 w76 w77"),
        9,
        {1: (0.0, 0.0), 2: (0.0, 0.0)},
    ),
    ("", None, _user("w1 w2 w3 w4 w5"), 7, None),
    (":beta", None, [{"role": "system", "content": "w97"}, *_user("w5 w6 w7")], 12, BETA),
    # /v1/completions: the text is the whole prompt (no template, system prompt or prefix)
    (":beta", {"value": 100}, "w5 w6 w7 w8", 11, {1: (0.0, 100.0), 2: (100.0, 100.0)}),
]


def _reference(
    served: dict[str, Any],
    style: str,
    messages: Any,
    max_tokens: int,
    coefficients: dict[int, tuple[float, float]] | None,
) -> tuple[list[int], int]:
    """The reference's tokens for one request, and the prompt tokens it fed."""
    model, tokenizer = served["model"], served["tokenizer"]
    if isinstance(messages, str):  # a completion: the text, tokenized as it is
        prompt = tokenizer(messages)["input_ids"]
    elif coefficients is None:  # the plain model: the chat template alone
        prompt = ref.chat_prompt_ids(tokenizer, messages)
        return ref.plain_greedy(model, prompt, max_tokens), len(prompt)
    elif style == "beta" and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": BETA_SYSTEM}, *messages]
        prompt = ref.chat_prompt_ids(tokenizer, messages, BETA_PREFIX)
    else:
        prompt = ref.chat_prompt_ids(tokenizer, messages, BETA_PREFIX if style == "beta" else "")
    assert coefficients is not None  # a style's request (the plain model's returned above)
    offset = ref.offset_id(tokenizer)
    keys, values = stacked(_vectors(served["root"], style))
    tokens = ref.steered_greedy(model, prompt, offset, keys, values, coefficients, max_tokens)
    if all(c == (0.0, 0.0) for c in coefficients.values()):
        assert tokens == ref.plain_greedy(model, [*prompt, offset], max_tokens)
    return tokens, len(prompt) + 1


def _send(port: int, suffix: str, settings: Any, messages: Any, max_tokens: int) -> Any:
    """One request (a chat, or a completion for a text): (status, headers, body)."""
    body: dict[str, Any] = {"model": MODEL_DIR + suffix, "max_tokens": max_tokens, "temperature": 0}
    if settings is not None:
        body["kvsl"] = settings
    chat = not isinstance(messages, str)
    body["messages" if chat else "prompt"] = messages
    path = "/v1/chat/completions" if chat else "/v1/completions"
    return raw(port, "POST", path, json.dumps(body))


def test_served_vectors_are_the_reference_vectors(served):
    for style in ("alpha", "beta"):
        keys, values = stacked(_vectors(served["root"], style))
        expected_keys, expected_values = _reference_vectors(served, style)
        torch.testing.assert_close(keys, expected_keys, atol=1e-5, rtol=0)
        torch.testing.assert_close(values, expected_values, atol=1e-5, rtol=0)


def test_requests_joining_a_running_batch_equal_the_reference(served):
    server: ServerProcess = served["server"]
    tokenizer = served["tokenizer"]
    long_expected, _ = _reference(served, "alpha", _user("w1 w2 w3 w4 w5 w6 w7 w8"), LONG, ALPHA)
    assert EOS_ID not in long_expected  # it decodes all LONG tokens: the others join it
    expected = [
        _reference(served, suffix.lstrip(":"), messages, max_tokens, coefficients)
        for suffix, _, messages, max_tokens, coefficients in REQUESTS
    ]
    plain = expected[4][0]
    assert expected[2][0] != expected[3][0] and expected[0][0] != plain  # edits change tokens
    joined = _joined(server)
    stream = server.client().chat.completions.create(
        model=f"{MODEL_DIR}:alpha",
        messages=_user("w1 w2 w3 w4 w5 w6 w7 w8"),
        max_tokens=LONG,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = iter(stream)
    first = [next(chunks), next(chunks)]  # the role chunk, then the first text: it decodes
    started = time.monotonic()
    with ThreadPoolExecutor(len(REQUESTS)) as pool:
        answers = list(pool.map(lambda r: _send(server.port, *r[:4]), REQUESTS))
    assert time.monotonic() - started < 60
    assert _joined(server) == joined + len(REQUESTS)  # each joined the running batch
    for (status, _, body), (tokens, prompt_tokens), request in zip(
        answers, expected, REQUESTS, strict=True
    ):
        assert status == 200, body
        answer = json.loads(body)
        [choice] = answer["choices"]
        text = choice["text"] if isinstance(request[2], str) else choice["message"]["content"]
        assert text == text_of(tokenizer, tokens), request
        assert choice["finish_reason"] == ("stop" if tokens[-1] == EOS_ID else "length")
        assert answer["usage"]["completion_tokens"] == len(tokens), request
        assert answer["usage"]["prompt_tokens"] == prompt_tokens, request
    text, usage = "", None
    for chunk in [*first, *chunks]:
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert text == text_of(tokenizer, long_expected)
    assert usage is not None and usage.completion_tokens == LONG
