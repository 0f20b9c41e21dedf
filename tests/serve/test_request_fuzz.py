"""Fuzzing request bodies: any bytes a client POSTs to `/v1/chat/completions` or
`/v1/completions` are a checked `Generation` or an `ApiError` (a 4xx with OpenAI's error
shape), never another exception (which the server would answer with a 500).

Bodies are drawn field by field from the OpenAI shapes, with any JSON in any field, and
as raw damaged bytes; valid requests keep what they asked for. In process (no server):
test_hostile.py sends hostile requests to a real one. `KVSL_FUZZ_EXAMPLES=N` runs N.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import tiny_models as tiny
from fuzz_settings import fuzz
from hostile_data import json_values, mutated, records, texts
from hypothesis import given
from hypothesis import strategies as st

from kvsl.engine.models import loaded_from_objects
from kvsl.lang.plan import GeneratePlan, ModelRef
from kvsl.serve.catalog import Catalog, ServedStyle
from kvsl.serve.schemas import ApiError, Generation, Limits, parse_body, parse_generation

LIMITS = Limits(max_prompt_tokens=64, max_new_tokens=16, max_coefficient=8.0, max_n=2)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Catalog:
    traces = tmp_path_factory.mktemp("request-fuzz") / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in tiny.TINY_TRACES))
    plan = tiny.make_plan(traces)
    sampled = dataclasses.replace(plan, style="sampled",
                                  generate=GeneratePlan(max_new_tokens=9, sample=True, seed=4))  # fmt: skip
    loaded = loaded_from_objects(tiny.word_model(), tiny.word_tokenizer(),
                                 ModelRef("w", "directory", "/w"))  # fmt: skip
    styles = {name: ServedStyle(name, p, tiny.word_vectors(), 7, traces)
              for name, p in (("tiny-style", plan), ("sampled", sampled))}  # fmt: skip
    return Catalog("w", loaded, styles)


content = st.one_of(
    texts(), st.lists(records({"type": st.just("text"), "text": texts()}), max_size=3)
)
message = records({"role": st.sampled_from(["system", "user", "assistant", "developer", "tool"]),
                   "content": content})  # fmt: skip
layers = st.one_of(
    texts(8), st.sampled_from(["1..", "0", "-1", "..1", "1..0", "9" * 30, "all", "١"]),
    st.lists(st.integers(-3, 4) | st.sampled_from([10**20, True]), max_size=3),
)  # fmt: skip
number = st.one_of(st.floats(-3, 3), st.integers(-3, 40), json_values(1))
request_fields: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["w", "w:tiny-style", "w:sampled", "w:none", "", "x" * 200]),
    "messages": st.lists(message, min_size=1, max_size=3),
    "prompt": st.one_of(texts(), st.lists(texts(), max_size=2)),
    "kvsl": records({"style": st.sampled_from(["tiny-style", "sampled", "nope"]),
                     "value": number, "key": number, "layers": layers}),
    "max_tokens": number,
    "max_completion_tokens": number,
    "temperature": number,
    "top_p": number,
    "seed": st.one_of(st.integers(), st.just(2**64)),
    "n": number,
    "stop": st.one_of(texts(), st.lists(texts(), max_size=5)),
    "stream": st.one_of(st.booleans(), json_values(1)),
    "stream_options": records({"include_usage": st.one_of(st.booleans(), json_values(1))}),
    "logprobs": st.one_of(st.booleans(), json_values(1)),
}
bodies = st.one_of(
    records(request_fields).map(lambda r: json.dumps(r).encode("utf-8", "surrogatepass")),
    records(request_fields).map(json.dumps).map(str.encode).flatmap(mutated),
    json_values(8).map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)


def _check(raw: bytes, kind: str, catalog: Catalog) -> Generation | None:
    try:
        return parse_generation(parse_body(raw), kind, catalog, LIMITS)
    except ApiError as err:
        assert 400 <= err.status < 500, err.status
        body = err.body()["error"]
        assert body["message"] and isinstance(body["message"], str)
        assert len(body["message"]) < 2000  # a client's megabyte is not echoed back
        assert body["param"] is None or isinstance(body["param"], str)
        json.dumps(err.body())
        return None


@fuzz(60)
@given(bodies, st.sampled_from(["chat", "completion"]))
def test_any_body_is_a_generation_or_a_4xx(catalog, raw: bytes, kind: str) -> None:
    generation = _check(raw, kind, catalog)
    if generation is not None:
        assert 1 <= generation.max_tokens <= LIMITS.max_new_tokens
        assert 1 <= generation.n <= LIMITS.max_n
        assert generation.prompt_tokens <= LIMITS.max_prompt_tokens
        assert len(generation.stop) <= 4 and all(generation.stop)
        assert 0 <= generation.temperature <= 2 and 0 < generation.top_p <= 1


@fuzz(30)
@given(
    st.sampled_from(["w", "w:tiny-style", "w:sampled"]),
    st.text(st.sampled_from("w1 w2 w3"), min_size=1, max_size=20).filter(str.strip),
    st.integers(1, LIMITS.max_new_tokens),
    st.floats(0.01, 2.0),
    st.integers(1, LIMITS.max_n),
    st.lists(st.text(min_size=1, max_size=5), max_size=4),
)
def test_a_valid_request_keeps_what_it_asked_for(
    catalog, model: str, text: str, max_tokens: int, temperature: float, n: int, stop: list[str]
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": text}],
            "max_tokens": max_tokens, "temperature": temperature, "n": n, "stop": stop}  # fmt: skip
    generation = _check(json.dumps(body).encode(), "chat", catalog)
    assert generation is not None
    assert (generation.model, generation.max_tokens, generation.n) == (model, max_tokens, n)
    assert generation.sample and generation.temperature == temperature
    assert generation.stop == tuple(stop) or (not stop and generation.stop == ())
    assert (generation.style is None) == (model == "w")


def _request(content_length: bytes, body: bytes) -> Any:
    from starlette.requests import Request

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/completions",
             "headers": [(b"content-length", content_length)]}  # fmt: skip
    return Request(scope, receive)


@pytest.mark.parametrize("declared", ["²".encode("latin-1"), b"9" * 5000, b"-1", b"+2"])
def test_a_content_length_that_is_not_a_count_is_not_a_500(declared: bytes) -> None:
    """`"²".isdigit()` is true and `int("²")` raises; so does `int` of 5,000 digits."""
    import asyncio

    from kvsl.serve.app import _read_body

    if declared == b"9" * 5000:  # declared past any limit: refused before reading
        with pytest.raises(ApiError) as err:
            asyncio.run(_read_body(_request(declared, b"{}"), 1000, 5.0))
        assert err.value.status == 413
    else:  # not a count: the body is read (and its size checked) as it arrives
        assert asyncio.run(_read_body(_request(declared, b"{}"), 1000, 5.0)) == b"{}"
