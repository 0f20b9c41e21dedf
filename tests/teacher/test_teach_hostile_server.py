"""`kvsl teach` against teacher servers that break HTTP itself (raw sockets, raw_teacher.py)
or answer 200 with a chat completion of the wrong shape (teacher_stub.py).

Each case ends in a coded diagnostic or a logged skip, never a traceback, within a bounded
time however long the server would go on, and the trace written before it stays.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import replace
from pathlib import Path

import openai  # imported up front: the timings below are of the run, not of this import
import pytest
from raw_teacher import Behaviour, Connection, completion, correct, elapsed, raw_teacher
from teacher_stub import Reply, StubServer, error_reply
from teacher_support import FAKE_KEY, MakePlan, demo_spec, plain_questions, write_jsonl
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.traces import load_traces
from kvsl.lang.diagnostics import ExitCode
from kvsl.teacher import TeachAborted, TeachOptions, iter_skip_log, skip_log_path, teach

assert openai
ENV = {"OPENAI_API_KEY": FAKE_KEY}
# One retry (the client's own), one second per attempt, stop after two failures in a row.
FAST = TeachOptions(max_retries=1, timeout=1.0, concurrency=1, max_consecutive_failures=2)
BOUND = 40.0  # seconds: generous for a loaded machine; every server below would go on for minutes


def first_good_then(behaviour: Behaviour) -> Behaviour:
    """The first request is answered correctly (q1's trace is written), the rest break."""

    def serve(conn: Connection, index: int) -> None:
        (correct if index == 0 else behaviour)(conn, index)

    return serve


def close_mid_body(conn: Connection, index: int) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
              b'{"id": "chatcmpl-1", "cho')


def close_without_reply(conn: Connection, index: int) -> None:
    pass


def not_http(conn: Connection, index: int) -> None:
    conn.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def bad_gzip(conn: Connection, index: int) -> None:
    conn.reply("200 OK", b"\x00\x01 not gzip at all", "Content-Encoding: gzip")


def huge_header(conn: Connection, index: int) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * (1024 * 1024) + b"\r\nContent-Length: 2\r\n\r\n{}")


def dribbled_head(conn: Connection, index: int) -> None:
    conn.dribble(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000, every=0.25)


def dribbled_body(conn: Connection, index: int) -> None:
    body = completion("<step>Add.</step><answer>2</answer>")
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    conn.dribble(body, every=0.25)


def silent(conn: Connection, index: int) -> None:
    conn.stopping.wait(120)  # reads the request, never answers (until the test ends)


def declared_huge(conn: Connection, index: int) -> None:
    size = 1024**3
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size)
    block = b" " * (1024 * 1024)
    for _ in range(1024):
        if not conn.send(block):
            return


def endless_chunks(conn: Connection, index: int) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"
    for _ in range(1024):  # 1 GiB at most
        if not conn.send(chunk):
            return


def _gzip(data: bytes, *, pad: int = 0) -> bytes:
    """`data` gzipped, then `pad` MiB of spaces (JSON's own trailing whitespace)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1024 * 1024)
    return packer.compress(data) + b"".join(packer.compress(block) for _ in range(pad)) + packer.flush()


def gzip_bomb(conn: Connection, index: int) -> None:
    """A good completion, then 64 MiB of padding: 64 KB on the wire (1 GiB would be 1 MB)."""
    conn.reply("200 OK", _gzip(completion("<answer>2</answer>"), pad=64), "Content-Encoding: gzip")


def brotli_unasked(conn: Connection, index: int) -> None:
    conn.reply("200 OK", b"\x1b\x00\x00", "Content-Encoding: br")


def compressed_correct(encoding: str, window: int) -> Behaviour:
    """A good teacher that compresses its replies (as the transport allows) with the zlib
    `window`: gzip, deflate as the standard has it (zlib), or the raw deflate some send."""

    def serve(conn: Connection, index: int) -> None:
        number = int(conn.prompt.split("[q")[1].split("]")[0])
        body = completion(f"<step>Add.</step><answer>{2 * number}</answer>")
        packer = zlib.compressobj(wbits=window)
        conn.reply("200 OK", packer.compress(body) + packer.flush(), f"Content-Encoding: {encoding}")

    return serve


def redirect_to_itself(conn: Connection, index: int) -> None:
    conn.reply("307 Temporary Redirect", b"", "Location: /v1/chat/completions")


def redirect_nowhere(conn: Connection, index: int) -> None:
    conn.reply("302 Found", b"")


def _run(tmp_path: Path, make_plan: MakePlan, url: str, options: TeachOptions = FAST
         ) -> tuple[TeachAborted, Path, float]:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(4))
    plan = make_plan(questions=questions, base_url=url, concurrency=1)
    start = time.monotonic()
    with pytest.raises(TeachAborted) as caught:
        teach(plan, options, environ=ENV)
    return caught.value, Path(plan.teacher.traces), elapsed(start)  # type: ignore[union-attr]


# --- a server reached, whose exchange breaks: a failed request, not "unreachable" -------


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [
        (close_mid_body, "broke the HTTP exchange before a whole reply"),
        (close_without_reply, "broke the HTTP exchange before a whole reply"),
        (not_http, "broke the HTTP exchange before a whole reply"),
        (bad_gzip, "could not be decoded"),
        (huge_header, "before a whole reply"),
        (brotli_unasked, "could not be decoded"),
    ],
    ids=["closed-mid-body", "closed-without-reply", "not-http", "bad-gzip", "huge-header",
         "unasked-encoding"],
)
def test_a_broken_exchange_is_a_server_error_not_an_unreachable_server(
    tmp_path: Path, make_plan: MakePlan, behaviour: Behaviour, says: str
) -> None:
    with raw_teacher(first_good_then(behaviour)) as server:
        aborted, traces, took = _run(tmp_path, make_plan, server.url)
        requests = server.requests

    diagnostic = aborted.diagnostics[0]
    assert diagnostic.code == "KVS514" and aborted.exit_code == ExitCode.ENVIRONMENT
    assert "last: server_error" in diagnostic.message and says in diagnostic.message
    assert "cannot reach" not in diagnostic.message
    assert requests == 1 + 2 * 2  # q1, then q2 and q3 with one retry each (openai's own)
    assert [t.id for t in load_traces(traces)] == ["q1"]  # kept
    log = list(iter_skip_log(skip_log_path(traces)))
    assert [(r["id"], r["reason"], r["permanent"]) for r in log] == [
        ("q2", "server_error", False), ("q3", "server_error", False)]
    assert took < BOUND


# --- time: each attempt is bounded by --timeout in all, however the bytes trickle --------


@pytest.mark.parametrize("behaviour", [dribbled_head, dribbled_body, silent],
                         ids=["dribbled-head", "dribbled-body", "never-answers"])
def test_a_reply_that_trickles_or_never_comes_times_out_per_attempt(
    tmp_path: Path, make_plan: MakePlan, behaviour: Behaviour
) -> None:
    with raw_teacher(first_good_then(behaviour)) as server:
        aborted, traces, took = _run(tmp_path, make_plan, server.url)
        requests = server.requests

    diagnostic = aborted.diagnostics[0]
    assert diagnostic.code == "KVS514" and "last: timeout" in diagnostic.message
    assert requests == 5  # each attempt cut at 1 s and retried once by the client
    assert [t.id for t in load_traces(traces)] == ["q1"]
    # 4 attempts of 1 s and two back-offs; a byte every 0.25 s would have run for minutes
    assert took < BOUND


# --- size: a reply past 16 MiB is refused while it arrives ------------------------------


@pytest.mark.parametrize("behaviour", [declared_huge, endless_chunks, gzip_bomb],
                         ids=["1-GiB-declared", "endless-chunked", "gzip-bomb"])
def test_a_reply_past_the_size_limit_is_refused_without_reading_it(
    tmp_path: Path, make_plan: MakePlan, behaviour: Behaviour
) -> None:
    with raw_teacher(first_good_then(behaviour)) as server:
        aborted, traces, took = _run(tmp_path, make_plan, server.url)
        sent = server.sent

    diagnostic = aborted.diagnostics[0]
    assert diagnostic.code == "KVS514"
    assert "last: bad_response: the reply is larger than 16 MiB" in diagnostic.message
    assert sent < 4 * 64 * 1024 * 1024  # four attempts, none read far past the limit
    assert [t.id for t in load_traces(traces)] == ["q1"]
    assert took < BOUND


@pytest.mark.parametrize(
    ("encoding", "window"),
    [("gzip", 16 + zlib.MAX_WBITS), ("deflate", zlib.MAX_WBITS), ("deflate", -zlib.MAX_WBITS)],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_a_compressed_reply_within_the_limit_is_read(
    tmp_path: Path, make_plan: MakePlan, encoding: str, window: int
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    with raw_teacher(compressed_correct(encoding, window)) as server:
        plan = make_plan(questions=questions, base_url=server.url, concurrency=1)
        teach(plan, FAST, environ=ENV)
        asked = server.requests
    assert asked == 2
    assert [t.id for t in load_traces(Path(plan.teacher.traces))] == ["q1", "q2"]  # type: ignore[union-attr]


# --- redirects: a loop or a dead end stops the run (KVS534) -----------------------------


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [(redirect_to_itself, "redirects without end"), (redirect_nowhere, "HTTP 302, with no `Location`")],
    ids=["loop", "no-location"],
)
def test_a_redirect_that_cannot_be_followed_is_kvs534_and_keeps_the_traces(
    tmp_path: Path, make_plan: MakePlan, behaviour: Behaviour, says: str
) -> None:
    with raw_teacher(first_good_then(behaviour)) as server:
        aborted, traces, took = _run(tmp_path, make_plan, server.url)

    diagnostic = aborted.diagnostics[0]
    assert diagnostic.code == "KVS534" and aborted.exit_code == ExitCode.ENVIRONMENT
    assert says in diagnostic.message and "base URL from the spec" in diagnostic.message
    assert "keeps every trace written so far (1 by this run)" in (diagnostic.help or "")
    assert [t.id for t in load_traces(traces)] == ["q1"]
    assert aborted.report.skip_reasons == {}  # stopped at once, no question logged as skipped
    assert took < BOUND


def test_the_cli_reports_a_redirect_loop_with_exit_3_and_no_traceback(tmp_path: Path) -> None:
    with raw_teacher(redirect_to_itself) as server:
        spec, _ = demo_spec(tmp_path, server.url, questions=2, template="Question: {{ question }}\n")
        result = CliRunner().invoke(app, ["teach", str(spec), "--max-retries", "0", "--timeout", "2"],
                                    env=ENV)
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "error[KVS534]" in result.stderr and "redirects without end" in result.stderr
    assert "Traceback" not in result.output and FAKE_KEY not in result.output


# --- 200s whose chat completion has the wrong shape: bad_response, never a crash --------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"choices": [{"message": "2", "finish_reason": "stop"}]}, "a `choices` entry that has no message"),
        ({"choices": [7]}, "a `choices` entry that has no message"),
        ({"choices": {"0": {"message": {"content": "x"}}}}, "`choices` that is an object, not a list"),
        ({"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "x"}]}}]},
         "a message whose `content` is a list, not text"),
        ({"choices": [{"message": {"role": "assistant", "content": 42}}]},
         "a message whose `content` is a number, not text"),
        ({"choices": []}, "an empty `choices` list"),
    ],
    ids=["message-string", "choice-number", "choices-object", "content-parts", "content-number", "empty"],
)
def test_a_completion_of_the_wrong_shape_is_a_bad_response(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan, body: object, says: str
) -> None:
    stub.responder = lambda prompt: Reply(body=body)
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)

    with pytest.raises(TeachAborted) as caught:
        teach(plan, replace(FAST, max_retries=0), environ=ENV)

    message = caught.value.diagnostics[0].message
    assert caught.value.diagnostics[0].code == "KVS514" and "last: bad_response" in message
    assert says in message and stub.count() == 2


@pytest.mark.parametrize(
    "usage",
    [b'{"prompt_tokens": "lots", "completion_tokens": [1]}', b'{"prompt_tokens": NaN, "completion_tokens": 3}',
     b'{"prompt_tokens": -5, "completion_tokens": 1e308}', b'"none"'],
    ids=["strings", "nan", "out-of-range", "not-an-object"],
)
def test_usage_a_server_cannot_count_is_unreported_and_the_trace_kept(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan, usage: bytes
) -> None:
    content = b'{"role": "assistant", "content": "<step>Add.</step><answer>2</answer>"}'
    body = b'{"choices": [{"index": 0, "message": ' + content + b', "finish_reason": "stop"}], "usage": ' + usage + b"}"
    stub.responder = lambda prompt: Reply(raw=body)
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    plan = make_plan(questions=questions, base_url=stub.url)

    report = teach(plan, FAST, environ=ENV)

    assert report.written == 1
    assert (report.usage.requests, report.usage.unreported, report.usage.total_tokens) == (1, 1, 0)


def test_a_retry_after_the_client_will_not_wait_for_is_named(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    stub.responder = lambda prompt: error_reply(429, "slow down", retry_after="3600")
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)
    start = time.monotonic()

    with pytest.raises(TeachAborted) as caught:
        teach(plan, replace(FAST, max_retries=3), environ=ENV)

    message = caught.value.diagnostics[0].message
    assert "rate_limited: the server asks to wait 3600 s, longer than the client waits" in message
    assert stub.count() == 2  # the client does not retry past its own limit: one try each
    assert elapsed(start) < BOUND


@pytest.mark.parametrize(("limit", "named"), [(120.0, False), (None, True)], ids=["openai-3", "openai-1"])
def test_the_retry_after_limit_is_the_installed_clients(
    monkeypatch: pytest.MonkeyPatch, limit: float | None, named: bool
) -> None:
    """A 90 s Retry-After is waited for by openai 3 (limit 120 s) but not by openai 1.x, whose
    retry code has 60 s written in and no constant: the note follows the installed client."""
    import types

    import openai._constants as constants

    from kvsl.teacher.client import _asked_to_wait

    if limit is None:
        monkeypatch.delattr(constants, "MAX_RETRY_AFTER_DELAY", raising=False)
    else:
        monkeypatch.setattr(constants, "MAX_RETRY_AFTER_DELAY", limit, raising=False)
    error = types.SimpleNamespace(response=types.SimpleNamespace(headers={"retry-after": "90"}))
    assert bool(_asked_to_wait(error)) is named  # type: ignore[arg-type]
