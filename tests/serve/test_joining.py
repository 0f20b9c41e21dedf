"""Continuous batching end to end: a real server subprocess, the real `openai` client.

A request that arrives while another is decoding joins the running batch (the server counts
it in `kvsl_rows_joined_running_total`) and is answered while the first still decodes; a
short request leaves the batch as soon as it is done. Every answer equals the same request
sent alone. With `--batching dynamic` a late request waits for the running batch instead.
"""

from __future__ import annotations

import pytest
from serve_support import MODEL_ID, ServerProcess, raw, tiny_workspace

LONG = 600  # tokens: the tiny model decodes them for seconds, never hitting EOS here
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("serve-joining"))


def _start(root, batching, *targets):
    return ServerProcess(root, *targets, "--batching", batching, "--gather-ms", "0",
                         "--max-new-tokens", str(LONG), "--max-batch", "4")


@pytest.fixture(scope="module")
def server(root):
    process = _start(root, "continuous", "alpha.kvs", "beta.kvs")
    yield process
    code, log = process.stop()
    assert code == 0, log
    assert "Traceback" not in log, log


def _joined(server) -> float:
    metrics = raw(server.port, "GET", "/metrics")[2]
    line = next(x for x in metrics.splitlines() if x.startswith("kvsl_rows_joined_running_total"))
    return float(line.split()[-1])


def _open(server, model, max_tokens):
    """A streaming request, read until its first token: it is decoding."""
    stream = server.client().chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=max_tokens, stream=True
    )
    chunks = iter(stream)
    first = [next(chunks), next(chunks)]  # the role chunk, then the first text
    return first, chunks


def _text(chunks) -> tuple[str, str | None]:
    text, reason = "", None
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            reason = choice.finish_reason or reason
    return text, reason


def _chat(server, model, prompt, max_tokens):
    answer = server.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens
    )
    return answer.choices[0].message.content, answer.choices[0].finish_reason


def test_a_request_arriving_mid_decode_joins_and_finishes_first(server):
    health = server.health()
    assert health["batching"] == "continuous"
    joined = _joined(server)
    first, rest = _open(server, f"{MODEL_ID}:alpha", LONG)
    late = _chat(server, f"{MODEL_ID}:beta", "hello there", 8)
    # The late request joined the running batch and was answered while the long one decodes.
    assert _joined(server) == joined + 1
    health = server.health()
    assert health["in_flight"] == 1 and health["running_rows"] == 1
    plain = _chat(server, MODEL_ID, "Count to ten.", 6)  # joins, leaves: the long one goes on
    assert _joined(server) == joined + 2
    assert server.health()["running_rows"] == 1
    long_text, reason = _text([*first, *rest])
    assert reason == "length"
    # Each equals the same request sent alone.
    assert server.wait_idle()["in_flight"] == 0
    alone = server.client().chat.completions.create(
        model=f"{MODEL_ID}:alpha", messages=MESSAGES, max_tokens=LONG
    )
    assert long_text == alone.choices[0].message.content
    assert late == _chat(server, f"{MODEL_ID}:beta", "hello there", 8)
    assert plain == _chat(server, MODEL_ID, "Count to ten.", 6)
    assert late[0] != plain[0]


def test_rows_that_end_free_their_place_for_waiting_requests(server):
    # max-batch 4: a 3-row request and a 1-row request fill the batch; a third waits until
    # the short one leaves, then joins while the long rows still decode.
    first, rest = _open(server, f"{MODEL_ID}:alpha", LONG)
    client = server.client()
    wide = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=5, n=3)
    assert [c.finish_reason for c in wide.choices] == ["length"] * 3
    joined = _joined(server)
    again = _chat(server, MODEL_ID, "Count to ten.", 6)
    assert _joined(server) == joined + 1 and server.health()["running_rows"] == 1
    assert _text([*first, *rest])[1] == "length"
    assert again == _chat(server, MODEL_ID, "Count to ten.", 6)
    assert server.wait_idle()["in_flight"] == 0


def test_dynamic_batching_makes_a_late_request_wait_for_the_batch(root):
    process = _start(root, "dynamic", "--model", str(root / MODEL_ID))  # plain: starts fast
    try:
        assert process.health()["batching"] == "dynamic"
        first, rest = _open(process, MODEL_ID, 200)
        late = _chat(process, MODEL_ID, "hello there", 8)
        # The late request ran in the next batch, after the long one ended.
        assert process.wait_idle()["batches"] == 2 and _joined(process) == 0
        assert _text([*first, *rest])[1] == "length"
        assert late == _chat(process, MODEL_ID, "hello there", 8)
    finally:
        code, log = process.stop()
    assert code == 0, log
