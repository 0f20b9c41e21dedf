"""`kvsl teach` behind a proxy: the one HTTPS_PROXY / HTTP_PROXY / ALL_PROXY names is used,
NO_PROXY's hosts are reached directly, the per-attempt limits hold through it, and a proxy URL
the client cannot use is KVS529 before anything is sent.

The client carries its own (bounded) transport, and a client given a transport ignores the
environment's proxies unless they are mounted for it: a teacher behind a corporate proxy was
unreachable. The stub teacher doubles as the proxy (a proxy receives the absolute URL).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import openai  # imported up front: the timings below are of the run, not of this import
import pytest
from raw_teacher import elapsed, raw_teacher
from teacher_stub import StubServer
from teacher_support import FAKE_KEY, MakePlan, demo_spec, plain_questions, write_jsonl
from test_teach_hostile_server import BOUND, FAST, dribbled_body, first_good_then
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.traces import load_traces
from kvsl.lang.diagnostics import ExitCode
from kvsl.teacher import TeachAborted, teach

assert openai
ENV = {"OPENAI_API_KEY": FAKE_KEY}
BEHIND = "http://teacher.invalid/v1"  # a host no resolver knows: reachable only via a proxy
CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port


def _origin(url: str) -> str:
    return url.removesuffix("/v1")


def test_a_teacher_behind_a_proxy_is_reached_through_it(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", _origin(stub.url))
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    plan = make_plan(questions=questions, base_url=BEHIND, concurrency=1)
    report = teach(plan, FAST, environ=ENV)
    assert report.written == 2
    assert [r.path for r in stub.requests] == [f"{BEHIND}/chat/completions"] * 2


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", None], ids=["no-proxy-host", "proxied"])
def test_no_proxy_hosts_are_reached_directly(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan, monkeypatch: pytest.MonkeyPatch,
    no_proxy: str | None,
) -> None:
    """The proxy named is dead: only NO_PROXY's host gets through, so both cases also show
    that the proxy is used at all."""
    monkeypatch.setenv("HTTP_PROXY", CLOSED)
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)
    if no_proxy is not None:
        assert teach(plan, FAST, environ=ENV).written == 2
        return
    with pytest.raises(TeachAborted) as caught:
        teach(plan, FAST, environ=ENV)
    assert caught.value.diagnostics[0].code == "KVS511" and stub.requests == []


def test_the_time_limit_holds_through_a_proxy(
    tmp_path: Path, make_plan: MakePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    with raw_teacher(first_good_then(dribbled_body)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", _origin(proxy.url))
        questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(4))
        plan = make_plan(questions=questions, base_url=BEHIND, concurrency=1)
        start = time.monotonic()
        with pytest.raises(TeachAborted) as caught:
            teach(plan, FAST, environ=ENV)
        took = elapsed(start)
        requests = proxy.requests
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS514" and "last: timeout" in diagnostic.message
    assert requests == 5  # each attempt cut at 1 s and retried once, as without a proxy
    assert [t.id for t in load_traces(Path(plan.teacher.traces))] == ["q1"]  # type: ignore[union-attr]
    assert took < BOUND


@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        ("HTTPS_PROXY", "ftp://proxy.corp:21", "Unknown scheme for proxy URL"),
        ("HTTP_PROXY", "http://user:hunter2@proxy.corp:port", "Invalid port"),
        ("ALL_PROXY", "socks5://proxy.corp:1080", "socksio"),
    ],
    ids=["scheme", "port", "socks-without-socksio"],
)
def test_a_proxy_that_cannot_be_used_is_kvs529_before_anything_is_sent(
    tmp_path: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch, variable: str, url: str,
    says: str,
) -> None:
    if says == "socksio" and importlib.util.find_spec("socksio") is not None:
        pytest.skip("socksio is installed: a SOCKS proxy URL is usable")
    monkeypatch.setenv(variable, url)
    spec, traces = demo_spec(tmp_path, stub.url, questions=2)
    result = CliRunner().invoke(app, ["teach", str(spec), "--max-retries", "0"], env=ENV)
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "error[KVS529]" in result.stderr and variable in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.output and "hunter2" not in result.output
    assert stub.requests == [] and not traces.exists()


def test_the_client_refuses_the_proxy_with_kvs529_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    from kvsl.lang.diagnostics import KvslError
    from kvsl.teacher.client import Endpoint, make_client

    monkeypatch.setenv("https_proxy", "ftp://proxy.corp:21")
    endpoint = Endpoint(base_url="https://api.example.com/v1", key=FAKE_KEY, base_url_origin="spec")
    with pytest.raises(KvslError) as caught:
        make_client(endpoint, max_retries=0, timeout=1.0)
    assert caught.value.diagnostics[0].code == "KVS529" and caught.value.exit_code == ExitCode.ENVIRONMENT
    assert "https_proxy" in caught.value.diagnostics[0].message
