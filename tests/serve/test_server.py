"""`kvsl serve` end to end: a real server subprocess on 127.0.0.1, the real `openai` client.

The server serves a tiny random Llama with two styles built from specs at start-up. Its
answers must equal `kvsl run` (same settings) text for text, a batch of mixed styles must
equal the same requests one by one, and streaming must equal non-streaming.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from serve_support import MODEL_ID, ServerProcess, raw, tiny_workspace
from typer.testing import CliRunner

from kvsl.cli import app

PROMPT = "Why is the sky blue?"
ARGS = ("alpha.kvs", "beta.kvs", "--max-batch", "8", "--max-queue", "16", "--gather-ms", "150",
        "--max-new-tokens", "64", "--max-prompt-tokens", "200", "--max-body-bytes", "20000",
        "--max-coefficient", "10", "--max-n", "3")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tiny_workspace(tmp_path_factory.mktemp("serve"))
    process = ServerProcess(root, *ARGS)
    yield process
    code, log = process.stop()
    assert code == 0, log
    assert "Traceback" not in log, log


def _chat(server, model=f"{MODEL_ID}:alpha", prompt=PROMPT, **kwargs):
    return server.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kwargs
    )


def _kvsl_run(server, spec, *flags):
    result = CliRunner().invoke(
        app, ["run", str(server.root / spec), "--prompt", PROMPT, "--format", "json", *flags]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"][0]["steered"]


def test_models_lists_the_model_and_one_id_per_style(server):
    ids = [m.id for m in server.client().models.list().data]
    assert ids == [MODEL_ID, f"{MODEL_ID}:alpha", f"{MODEL_ID}:beta"]
    health = server.health()
    assert health["status"] == "ok" and health["styles"] == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("spec", "body", "flags"),
    [
        ("alpha.kvs", {}, []),
        ("alpha.kvs", {"extra_body": {"kvsl": {"value": 3, "layers": "1"}}}, ["--value", "3", "--layers", "1"]),
        ("alpha.kvs", {"extra_body": {"kvsl": {"value": 0}}}, ["--value", "0"]),
        ("alpha.kvs", {"extra_body": {"kvsl": {"key": 2, "value": -2}}}, ["--key", "2", "--value", "-2"]),
        ("beta.kvs", {"max_tokens": 12}, ["--max-new-tokens", "12"]),
        ("alpha.kvs", {"temperature": 0.9, "top_p": 0.8, "seed": 5},
         ["--sample", "--temperature", "0.9", "--top-p", "0.8", "--seed", "5"]),
    ],
)
def test_steered_output_equals_kvsl_run(server, spec, body, flags):
    style = spec.removesuffix(".kvs")
    answer = _chat(server, model=f"{MODEL_ID}:{style}", **body)
    assert answer.choices[0].message.content == _kvsl_run(server, spec, *flags)
    assert answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_the_style_can_come_from_the_kvsl_field(server):
    by_id = _chat(server, model=f"{MODEL_ID}:alpha").choices[0].message.content
    by_field = _chat(server, model=MODEL_ID, extra_body={"kvsl": {"style": "alpha"}})
    assert by_field.choices[0].message.content == by_id
    plain = _chat(server, model=MODEL_ID, max_tokens=8).choices[0].message.content
    assert plain != by_id


def test_plain_model_id_is_plain_generation(server):
    import kvsl
    from kvsl.engine.models import load_model, resolve_ref

    loaded = load_model(resolve_ref(str(server.root / MODEL_ID)))
    expected = kvsl.generate(loaded.model, loaded.tokenizer, PROMPT, max_new_tokens=10)[0]
    assert _chat(server, model=MODEL_ID, max_tokens=10).choices[0].message.content == expected


MIXED = [
    {"model": f"{MODEL_ID}:alpha"},
    {"model": f"{MODEL_ID}:beta", "prompt": "hello there"},
    {"model": MODEL_ID, "max_tokens": 6},
    {"model": f"{MODEL_ID}:alpha", "extra_body": {"kvsl": {"value": 2}}, "prompt": "What is 7 * 8?"},
    {"model": f"{MODEL_ID}:beta", "extra_body": {"kvsl": {"layers": [1], "key": 1}}},
    {"model": MODEL_ID, "prompt": "Count to ten.", "max_tokens": 10},
]


def _send(server, request):
    request = dict(request)
    return _chat(server, **request).choices[0].message.content


def test_a_mixed_style_batch_equals_the_same_requests_one_by_one(server):
    before = server.health()["batches"]
    with ThreadPoolExecutor(len(MIXED)) as pool:
        together = list(pool.map(lambda r: _send(server, r), MIXED))
    batches = server.health()["batches"] - before
    assert batches < len(MIXED), "the concurrent requests were not batched"
    one_by_one = [_send(server, r) for r in MIXED]
    assert together == one_by_one
    assert len(set(one_by_one)) > 3  # the styles and settings really differ
    assert server.wait_idle()["in_flight"] == 0


def _stream(server, endpoint="chat", **kwargs):
    client = server.client()
    if endpoint == "chat":
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
    else:
        chunks = list(client.completions.create(stream=True, **kwargs))
    texts: dict[int, str] = {}
    reasons: dict[int, str] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            piece = choice.delta.content if endpoint == "chat" else choice.text
            texts[choice.index] = texts.get(choice.index, "") + (piece or "")
            if choice.finish_reason:
                reasons[choice.index] = choice.finish_reason
    return texts, reasons, usage


@pytest.mark.parametrize(
    "request_",
    [
        {"model": f"{MODEL_ID}:alpha"},
        {"model": f"{MODEL_ID}:beta", "max_tokens": 20},
        {"model": MODEL_ID, "max_tokens": 16, "n": 2, "temperature": 1.0, "seed": 11},
    ],
)
def test_streaming_equals_non_streaming(server, request_):
    messages = [{"role": "user", "content": PROMPT}]
    whole = server.client().chat.completions.create(messages=messages, **request_)
    texts, reasons, usage = _stream(server, messages=messages, **request_)
    assert [texts[c.index] for c in whole.choices] == [c.message.content for c in whole.choices]
    assert [reasons[c.index] for c in whole.choices] == [c.finish_reason for c in whole.choices]
    assert usage.model_dump() == whole.usage.model_dump()


def test_stop_strings_end_both_kinds_alike(server):
    full = _chat(server, model=MODEL_ID, max_tokens=24).choices[0].message.content
    stop = full[6:8]
    cut = _chat(server, model=MODEL_ID, max_tokens=24, stop=[stop])
    text = cut.choices[0].message.content
    assert text == full[: full.index(stop)] and cut.choices[0].finish_reason == "stop"
    texts, reasons, _ = _stream(server, model=MODEL_ID, max_tokens=24, stop=[stop],
                                messages=[{"role": "user", "content": PROMPT}])
    assert texts[0] == text and reasons[0] == "stop"


def test_completions_endpoint_steers_and_streams(server):
    client = server.client()
    steered = client.completions.create(model=f"{MODEL_ID}:alpha", prompt=PROMPT, max_tokens=8)
    plain = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=8)
    assert steered.choices[0].text != plain.choices[0].text
    assert steered.usage.prompt_tokens == plain.usage.prompt_tokens + 1  # the offset token
    texts, _, usage = _stream(server, "completion", model=f"{MODEL_ID}:alpha", prompt=PROMPT,
                              max_tokens=8)
    assert texts[0] == steered.choices[0].text and usage.completion_tokens == 8


BAD = [
    # (body, status, code)
    ("{not json", 400, "invalid_json"),
    ("[1, 2]", 400, "invalid_json"),
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "model_not_found"),
    ({"model": f"{MODEL_ID}:gamma", "messages": [{"role": "user", "content": "x"}]}, 404, "model_not_found"),
    ({"model": MODEL_ID, "kvsl": {"style": "gamma"}, "messages": [{"role": "user", "content": "x"}]}, 404, "style_not_found"),
    ({"model": f"{MODEL_ID}:alpha", "kvsl": {"value": 11}, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": f"{MODEL_ID}:alpha", "kvsl": {"value": "6"}, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": f"{MODEL_ID}:alpha", "kvsl": {"layers": "9"}, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": f"{MODEL_ID}:alpha", "kvsl": {"layers": "1-3"}, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": f"{MODEL_ID}:alpha", "kvsl": {"colour": 1}, "messages": [{"role": "user", "content": "x"}]}, 400, "unknown_parameter"),
    ({"model": MODEL_ID, "kvsl": {"value": 2}, "messages": [{"role": "user", "content": "x"}]}, 400, None),
    ({"model": MODEL_ID, "kvsl": "alpha", "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": MODEL_ID, "temperature": "hot", "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": MODEL_ID, "temperature": 3, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "top_p": 0, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "max_tokens": 65, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "max_tokens": True, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": MODEL_ID, "n": 4, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "seed": -1, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "stop": ["a", "b", "c", "d", "e"], "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": MODEL_ID, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_type"),
    ({"model": MODEL_ID, "messages": []}, 400, "invalid_type"),
    ({"model": MODEL_ID, "messages": "hi"}, 400, "invalid_type"),
    ({"model": MODEL_ID, "messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_value"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": 5}]}, 400, "invalid_type"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "x" * 300}]}, 400, "context_length_exceeded"),
    ({"model": MODEL_ID, "tools": [{"type": "function"}], "messages": [{"role": "user", "content": "x"}]}, 400, "unsupported_parameter"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "x" * 30000}]}, 413, "request_too_large"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD)
def test_a_bad_request_gets_an_openai_error_and_the_server_stays_up(server, body, status, code):
    data = body if isinstance(body, str) else json.dumps(body)
    got, _, text = raw(server.port, "POST", "/v1/chat/completions", data)
    assert got == status, text
    error = json.loads(text)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["code"] == code
    assert server.health()["status"] == "ok"


def test_the_openai_client_raises_its_own_error_types(server):
    with pytest.raises(openai.NotFoundError) as err:
        _chat(server, model="gpt-4o")
    assert err.value.status_code == 404 and "tiny-llama:alpha" in err.value.message
    with pytest.raises(openai.BadRequestError):
        _chat(server, extra_body={"kvsl": {"value": -100}})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/nothing", 404), ("GET", "/v1/chat/completions", 405), ("GET", "/v1/models/nope", 404)],
)
def test_unknown_routes_and_methods_get_openai_errors(server, method, path, status):
    got, _, text = raw(server.port, method, path)
    assert got == status and "message" in json.loads(text)["error"]


def test_metrics_count_requests_tokens_and_batches(server):
    _chat(server, max_tokens=4)
    status, headers, text = raw(server.port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in ("kvsl_requests_total", "kvsl_completion_tokens_total", "kvsl_request_seconds_bucket",
                 "kvsl_batch_rows_bucket", "kvsl_requests_in_flight"):
        assert name in text
    assert 'kvsl_requests_total{endpoint="/v1/chat/completions",status="200"}' in text
    assert 'status="400"' in text
