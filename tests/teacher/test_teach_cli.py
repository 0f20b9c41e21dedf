"""`kvsl teach` through the command line (Typer's CliRunner and a real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from teacher_stub import Reply, StubServer, error_reply, trace_reply
from teacher_support import FAKE_KEY, plain_questions, write_jsonl
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.traces import load_traces

runner = CliRunner()


def write_spec(tmp_path: Path, *, base_url: str | None, questions: str = "q.jsonl",
               model: str = "gpt-4o-mini", concurrency: int = 2) -> Path:
    base = f'    base_url = "{base_url}"\n' if base_url else ""
    spec = tmp_path / "demo.kvs"
    spec.write_text(
        'style "demo" {\n'
        '  description = "Short steps."\n'
        "  teacher {\n"
        f'    model = "{model}"\n'
        '    template = """Question: {{ question }}\nCorrect answer: {{ answer }}\n"""\n'
        '    traces = "traces/demo.jsonl"\n'
        f'    questions = "{questions}"\n'
        f"    concurrency = {concurrency}\n"
        f"{base}"
        "  }\n"
        "  contrast { pairs = 4  shots = 1 }\n"
        "}\n",
        encoding="utf-8",
    )
    return spec


def teach(*args: str, key: str | None = FAKE_KEY, **env: str):  # type: ignore[no-untyped-def]
    environment = {"OPENAI_API_KEY": key, **env} if key else dict(env)
    return runner.invoke(app, ["teach", *args, "--max-retries", "1", "--timeout", "2"],
                         env=environment)


def test_teach_writes_traces_prints_usage_and_resumes(tmp_path: Path, stub: StubServer) -> None:
    write_jsonl(tmp_path / "q.jsonl", plain_questions(4))
    stub.script("[q2]", trace_reply("5"))  # wrong: the answer is 4
    spec = write_spec(tmp_path, base_url=stub.url)

    result = teach(str(spec))

    assert result.exit_code == 0, result.output
    assert "asked 4: wrote 3 traces, skipped 1" in result.stdout
    assert "skipped: wrong_answer 1 (details in" in result.stdout
    assert "tokens: 400 prompt + 80 completion = 480; estimated cost: $0.0001 at gpt-4o-mini" in result.stdout
    assert len(load_traces(tmp_path / "traces" / "demo.jsonl")) == 3

    again = teach(str(spec))
    assert again.exit_code == 0 and "3 already in" in again.stdout and "1 skipped by earlier" in again.stdout
    assert "asked 0" in again.stdout and stub.count() == 4


def test_flags_override_the_spec(tmp_path: Path, stub: StubServer) -> None:
    write_jsonl(tmp_path / "q.jsonl", [{"question": "never asked", "answer": "1"}])
    write_jsonl(tmp_path / "other.jsonl", plain_questions(3))
    spec = write_spec(tmp_path, base_url="http://127.0.0.1:9/v1")

    result = teach(str(spec), "--questions", str(tmp_path / "other.jsonl"), "--format", "plain",
                   "--limit", "2", "--base-url", stub.url, "--model", "local-llama",
                   "--concurrency", "1")

    assert result.exit_code == 0, result.output
    assert "teacher `local-llama`" in result.stdout and "estimated cost: unknown" in result.stdout
    assert stub.count() == 2 and {r.body["model"] for r in stub.requests} == {"local-llama"}


def test_dry_run_needs_no_key_and_sends_nothing(tmp_path: Path, stub: StubServer) -> None:
    write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    spec = write_spec(tmp_path, base_url=stub.url)

    result = teach(str(spec), "--dry-run", key=None)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("===== q1 =====\nQuestion: What is 1 + 1? [q1]\nCorrect answer: 2\n")
    assert "===== q2 =====" in result.stdout
    assert "dry run: 2 prompts rendered, nothing sent" in result.stderr
    assert stub.count() == 0 and not (tmp_path / "traces").exists()


def test_no_key_is_a_coded_diagnostic_with_the_fix(tmp_path: Path, stub: StubServer) -> None:
    write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    result = teach(str(write_spec(tmp_path, base_url=stub.url)), key=None)
    assert result.exit_code == 3
    assert "error[KVS510]" in result.stderr and "export OPENAI_API_KEY" in result.stderr
    assert stub.count() == 0


def test_server_errors_exit_3_and_keep_what_was_written(tmp_path: Path, stub: StubServer) -> None:
    write_jsonl(tmp_path / "q.jsonl", plain_questions(20))
    stub.fail_after = 2  # then 500s (Retry-After 0.05 s) for ever
    spec = write_spec(tmp_path, base_url=stub.url, concurrency=1)

    result = teach(str(spec))

    assert result.exit_code == 3, result.output
    assert "error[KVS514]" in result.stderr  # 8 questions in a row failed
    assert "stopped after 10 of 20: wrote 2 traces, skipped 8" in result.stderr
    assert [t.id for t in load_traces(tmp_path / "traces" / "demo.jsonl")] == ["q1", "q2"]


def test_bad_spec_is_reported_like_kvsl_check(tmp_path: Path) -> None:
    spec = tmp_path / "bad.kvs"
    spec.write_text('style "x" {\n  teacher { model = }\n}\n')
    result = teach(str(spec))
    assert result.exit_code == 1 and "error[KVS0" in result.stderr


def test_the_key_never_appears_in_any_output_or_file(tmp_path: Path, stub: StubServer) -> None:
    """Good, malformed, echoing, wrong, rate-limited and rejected runs, all grepped for the key."""
    write_jsonl(tmp_path / "q.jsonl", plain_questions(5))
    stub.script("[q1]", Reply(content=f"no tags, but here is your key: {FAKE_KEY}"))
    stub.script("[q2]", trace_reply("4", steps=(f"The header said Bearer {FAKE_KEY}.", "2+2=4")))
    stub.script("[q3]", trace_reply("7"))
    stub.script("[q4]", error_reply(429, f"rate limited for key {FAKE_KEY}", retry_after="0.05"),
                error_reply(429, f"rate limited for key {FAKE_KEY}", retry_after="0.05"))
    spec = write_spec(tmp_path, base_url=stub.url, concurrency=1)
    outputs = [teach(str(spec)), teach(str(spec), "--dry-run")]
    stub.require_key = "sk-some-other-key"  # 401 that echoes the key we sent
    write_jsonl(tmp_path / "q.jsonl", plain_questions(6))
    outputs.append(teach(str(spec)))
    assert outputs[-1].exit_code == 3 and "KVS512" in outputs[-1].stderr
    outputs.append(teach(str(spec), "--base-url", "http://127.0.0.1:9/v1"))
    assert outputs[-1].exit_code == 3 and "KVS511" in outputs[-1].stderr

    assert stub.count() >= 7  # the key really was sent, and echoed back
    for result in outputs:
        assert FAKE_KEY not in result.output and FAKE_KEY not in (result.stderr or "")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "demo.skipped.jsonl" for p in files)
    for path in files:
        assert FAKE_KEY not in path.read_text(encoding="utf-8"), path
    # ...but the scrubbed replies are still useful for debugging a template.
    skipped = [json.loads(line) for line in (tmp_path / "traces" / "demo.skipped.jsonl").read_text().splitlines()]
    assert any("[redacted]" in r.get("reply", "") for r in skipped)


def test_sigkill_mid_run_leaves_a_valid_trace_file_and_the_rerun_completes_it(
    tmp_path: Path, stub: StubServer
) -> None:
    n = 12
    write_jsonl(tmp_path / "q.jsonl", plain_questions(n))
    slow = stub.responder
    stub.responder = lambda prompt: Reply(content=slow(prompt).content, delay=0.15)
    spec = write_spec(tmp_path, base_url=stub.url, concurrency=1)
    traces = tmp_path / "traces" / "demo.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    process = subprocess.Popen([sys.executable, "-m", "kvsl", "teach", str(spec)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if traces.exists() and traces.read_text().count("\n") >= 3:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the teacher wrote nothing within 60 s")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    survivors = load_traces(traces)  # every line parses: nothing half-written
    done = {t.id for t in survivors}
    assert 3 <= len(done) < n
    asked_before = len(stub.requests)

    stub.responder = slow
    result = teach(str(spec))

    assert result.exit_code == 0, result.output
    assert f"{len(done)} already in" in result.stdout
    rerun = [r.prompt for r in stub.requests[asked_before:]]
    for k in range(1, n + 1):
        expected = 0 if f"q{k}" in done else 1
        assert sum(f"[q{k}]" in p for p in rerun) == expected, k
    assert sorted(t.id for t in load_traces(traces)) == sorted(f"q{k}" for k in range(1, n + 1))  # type: ignore[type-var]
