"""`kvsl.teacher.teach` against a real HTTP server on 127.0.0.1 (see teacher_stub.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from teacher_stub import Reply, StubServer, error_reply, trace_reply
from teacher_support import FAKE_KEY, MakePlan, plain_questions, write_jsonl

from kvsl.formats.traces import load_traces
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.teacher import TeachAborted, TeachOptions, dry_run, iter_skip_log, skip_log_path, teach

ENV = {"OPENAI_API_KEY": FAKE_KEY}
# Fast client settings: real retries, tiny waits.
FAST = TeachOptions(max_retries=3, timeout=2.0)


def options(**changes: object) -> TeachOptions:
    from dataclasses import replace

    return replace(FAST, **changes)  # type: ignore[arg-type]


def trace_ids(path: str | Path) -> list[str | None]:
    return [t.id for t in load_traces(path)]


def test_good_run_writes_every_trace_with_usage(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(5))
    plan = make_plan(questions=questions, base_url=stub.url)

    report = teach(plan, FAST, environ=ENV)

    assert report.written == 5 and report.skipped == () and report.asked == 5
    traces = load_traces(plan.teacher.traces)  # type: ignore[union-attr]
    assert sorted(t.id for t in traces) == [f"q{k}" for k in range(1, 6)]  # type: ignore[type-var]
    first = next(t for t in traces if t.id == "q3")
    assert first.question == "What is 3 + 3? [q3]"
    assert first.steps == ("First, read the question.", "Then solve it.")
    assert first.answer == "6"
    assert first.extra == {"teacher": "gpt-4o-mini"}
    assert (report.usage.prompt_tokens, report.usage.completion_tokens) == (500, 100)
    assert report.usage.requests == 5 and stub.count() == 5
    # What was sent: the rendered template, the spec's model, the key as a bearer token.
    sent = stub.requests[0]
    assert sent.body["model"] == "gpt-4o-mini" and sent.body["temperature"] == 0.0
    assert sent.prompt.startswith("Explain in the test-style style.\nQuestion: What is")
    assert sent.headers["authorization"] == f"Bearer {FAKE_KEY}"


def test_429_with_retry_after_and_500s_are_retried_by_the_client(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    stub.script("[q1]", error_reply(429, "slow down", retry_after="0.3"), error_reply(500), error_reply(503))
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)

    report = teach(plan, FAST, environ=ENV)

    assert report.written == 2 and report.skipped == ()
    assert stub.count("[q1]") == 4  # 429, 500, 503, then the good reply
    assert stub.count("[q2]") == 1
    q1 = [r.time for r in stub.requests if "[q1]" in r.prompt]
    assert q1[1] - q1[0] >= 0.3  # Retry-After was honoured


def test_slow_responses_beyond_the_timeout_are_retried(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    stub.script("[q1]", Reply(content="<step>late</step><answer>2</answer>", delay=2.5))
    plan = make_plan(questions=questions, base_url=stub.url)

    report = teach(plan, options(timeout=1.0), environ=ENV)

    assert report.written == 1 and stub.count("[q1]") == 2
    assert load_traces(plan.teacher.traces)[0].steps == ("First, read the question.", "Then solve it.")  # type: ignore[union-attr]


def test_failures_that_outlast_the_retries_are_logged_and_asked_again_next_run(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    stub.script("[q1]", *[error_reply(500, retry_after="0.05")] * 3)  # 1 try + 2 retries
    stub.script("[q2]", *[Reply(content="slow", delay=2.0)] * 3)
    plan = make_plan(questions=questions, base_url=stub.url)

    report = teach(plan, options(max_retries=2, timeout=0.8), environ=ENV)

    assert report.written == 1 and report.skip_reasons == {"server_error": 1, "timeout": 1}
    assert stub.count("[q1]") == 3 and stub.count("[q2]") == 3
    log = list(iter_skip_log(skip_log_path(plan.teacher.traces)))  # type: ignore[union-attr]
    assert {(r["id"], r["reason"], r["permanent"]) for r in log} == {
        ("q1", "server_error", False), ("q2", "timeout", False)}

    # Transient failures are not permanent: the rerun asks exactly those two again.
    again = teach(plan, FAST, environ=ENV)
    assert (again.already_done, again.asked, again.written) == (1, 2, 2)
    assert stub.count("[q3]") == 1
    assert sorted(trace_ids(plan.teacher.traces)) == ["q1", "q2", "q3"]  # type: ignore[union-attr,type-var]


def test_malformed_wrong_and_truncated_replies_are_skipped_for_good(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(5))
    stub.script("[q1]", Reply(content="2 plus 2 is 4, obviously."))
    stub.script("[q2]", trace_reply("5"))  # the known answer is 4
    stub.script("[q3]", Reply(content="<step>1. Start.</step>"))
    stub.script("[q4]", Reply(content="<step>1. Start, and then", finish_reason="length"))
    plan = make_plan(questions=questions, base_url=stub.url)

    report = teach(plan, FAST, environ=ENV)

    assert report.written == 1 and trace_ids(plan.teacher.traces) == ["q5"]  # type: ignore[union-attr]
    by_id = {r.id: r for r in report.skipped}
    assert {i: r.reason for i, r in by_id.items()} == {
        "q1": "no_steps", "q2": "wrong_answer", "q3": "no_answer", "q4": "truncated"}
    assert (by_id["q2"].expected, by_id["q2"].got) == ("4", "5")
    log = list(iter_skip_log(skip_log_path(plan.teacher.traces)))  # type: ignore[union-attr]
    assert len(log) == 4 and all(r["permanent"] is True for r in log)
    assert next(r for r in log if r["id"] == "q1")["reply"] == "2 plus 2 is 4, obviously."

    # Permanent skips are never asked again...
    before = stub.count()
    again = teach(plan, FAST, environ=ENV)
    assert (again.asked, again.previously_skipped, again.already_done) == (0, 4, 1)
    assert stub.count() == before
    # ...unless asked to retry them.
    retried = teach(plan, options(retry_skipped=True), environ=ENV)
    assert retried.asked == 4 and retried.written == 4
    assert sorted(trace_ids(plan.teacher.traces)) == [f"q{k}" for k in range(1, 6)]  # type: ignore[union-attr,type-var]


def test_resume_never_asks_twice(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(6))
    plan = make_plan(questions=questions, base_url=stub.url)

    first = teach(plan, options(limit=3), environ=ENV)
    assert first.written == 3 and stub.count() == 3
    second = teach(plan, FAST, environ=ENV)
    assert (second.already_done, second.asked, second.written) == (3, 3, 3)
    assert stub.count() == 6 and all(stub.count(f"[q{k}]") == 1 for k in range(1, 7))
    third = teach(plan, FAST, environ=ENV)
    assert third.asked == 0 and stub.count() == 6


def test_a_server_that_dies_mid_run_leaves_a_valid_trace_file_and_the_rerun_completes_it(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(8))
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)
    stub.fail_after = 3

    with pytest.raises(TeachAborted) as caught:
        teach(plan, options(max_retries=1, max_consecutive_failures=2), environ=ENV)

    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert caught.value.diagnostics[0].code == "KVS514"
    assert caught.value.report.written == 3
    assert "keeps every trace written so far (3 by this run)" in (caught.value.diagnostics[0].help or "")
    assert trace_ids(plan.teacher.traces) == ["q1", "q2", "q3"]  # type: ignore[union-attr]

    stub.fail_after = None
    asked_before = stub.count()
    report = teach(plan, FAST, environ=ENV)
    assert (report.already_done, report.asked, report.written) == (3, 5, 5)
    assert stub.count() - asked_before == 5
    assert trace_ids(plan.teacher.traces) == [f"q{k}" for k in range(1, 9)]  # type: ignore[union-attr]


def test_unreachable_server_is_a_coded_environment_error(
    tmp_path: Path, make_plan: MakePlan
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    plan = make_plan(questions=questions, base_url=f"http://127.0.0.1:{port}/v1")

    with pytest.raises(TeachAborted) as caught:
        teach(plan, options(max_retries=1), environ=ENV)

    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS511" and caught.value.exit_code == 3
    assert f"127.0.0.1:{port}" in diagnostic.message and "the spec" in diagnostic.message
    assert not Path(plan.teacher.traces).exists()  # type: ignore[union-attr]


def test_rejected_key_is_reported_without_the_key(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    stub.require_key = "sk-the-right-one"  # the stub echoes the wrong key back, as OpenAI does
    plan = make_plan(questions=questions, base_url=stub.url)

    with pytest.raises(TeachAborted) as caught:
        teach(plan, FAST, environ=ENV)

    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS512" and caught.value.exit_code == 3
    assert "HTTP 401" in diagnostic.message and "[redacted]" in diagnostic.message
    assert FAKE_KEY not in json.dumps(diagnostic.to_dict()) and FAKE_KEY not in str(caught.value)
    assert stub.count() <= 2  # 401 is not retried


def test_unknown_model_is_reported(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    stub.models = {"llama3.1:8b"}
    plan = make_plan(questions=questions, base_url=stub.url, model="llama3")

    with pytest.raises(TeachAborted) as caught:
        teach(plan, FAST, environ=ENV)
    assert caught.value.diagnostics[0].code == "KVS513"
    assert "`llama3`" in caught.value.diagnostics[0].message

    report = teach(plan, options(model="llama3.1:8b"), environ=ENV)
    assert report.written == 1 and stub.requests[-1].body["model"] == "llama3.1:8b"


def test_no_key_is_a_coded_error_before_any_request(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    plan = make_plan(questions=questions, base_url=stub.url)
    with pytest.raises(KvslError) as caught:
        teach(plan, FAST, environ={})
    assert caught.value.diagnostics[0].code == "KVS510" and caught.value.exit_code == 3
    assert "OPENAI_API_KEY" in (caught.value.diagnostics[0].help or "")
    assert stub.count() == 0


def test_base_url_precedence_flag_then_spec_then_environment(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    plan = make_plan(questions=questions, base_url="http://127.0.0.1:9/v1")
    report = teach(plan, options(base_url=stub.url), environ=ENV)
    assert report.written == 1 and report.base_url == stub.url
    plan = make_plan(questions=questions, traces=tmp_path / "other.jsonl")
    report = teach(plan, FAST, environ={**ENV, "OPENAI_BASE_URL": stub.url})
    assert report.written == 1 and stub.count() == 2


def test_dry_run_renders_prompts_and_sends_nothing(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    plan = make_plan(questions=questions, base_url=stub.url)
    report = dry_run(plan, options(limit=2))
    assert [p.id for p in report.prompts] == ["q1", "q2"]
    assert report.prompts[0].prompt == (
        "Explain in the test-style style.\nQuestion: What is 1 + 1? [q1]\nCorrect answer: 2\n"
    )
    assert stub.count() == 0 and not Path(plan.teacher.traces).exists()  # type: ignore[union-attr]


def test_bounded_concurrency(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(6))
    stub.responder = lambda prompt: Reply(
        content=trace_reply(prompt.rsplit("Correct answer: ", 1)[1].strip()).content, delay=0.2
    )
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=5)
    report = teach(plan, options(concurrency=2), environ=ENV)
    assert report.written == 6 and stub.max_in_flight == 2


def test_multiple_choice_and_gsm8k_sources(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    arc = write_jsonl(tmp_path / "arc.jsonl", [
        {"id": f"arc{k}", "answerKey": "B", "question": {
            "stem": f"Which keeps cocoa hot? [arc{k}]",
            "choices": [{"label": "A", "text": "open cup"}, {"label": "B", "text": "foam cup"}]}}
        for k in range(1, 5)
    ])
    for key, answer in [("[arc1]", "(b)"), ("[arc2]", "B: foam cup"), ("[arc3]", "foam cup"), ("[arc4]", "A")]:
        stub.script(key, trace_reply(answer))
    plan = make_plan(questions=arc, base_url=stub.url)
    report = teach(plan, FAST, environ=ENV)
    assert report.written == 3 and [r.id for r in report.skipped] == ["arc4"]
    traces = {t.id: t for t in load_traces(plan.teacher.traces)}  # type: ignore[union-attr]
    assert traces["arc1"].answer == "B" and traces["arc1"].domain == "science"
    assert traces["arc1"].question.endswith("Choices:\nA: open cup\nB: foam cup")
    assert "Options: A=open cup B=foam cup" in stub.requests[0].prompt
    assert "Domain: science" in stub.requests[0].prompt

    gsm = write_jsonl(tmp_path / "gsm.jsonl", [
        {"question": "How many cents in $12.34? [g1]", "answer": "12.34 * 100 = 1234\n#### 1,234"}])
    stub.script("[g1]", trace_reply("1,234 cents"))
    plan = make_plan(questions=gsm, base_url=stub.url, traces=tmp_path / "gsm_traces.jsonl")
    report = teach(plan, FAST, environ=ENV)
    assert report.written == 1
    trace = load_traces(tmp_path / "gsm_traces.jsonl")[0]
    assert (trace.id, trace.answer, trace.domain) == ("gsm-1", "1234", "arithmetic")


def test_template_that_fails_to_render_stops_before_any_request(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    template = tmp_path / "t.j2"
    template.write_text("Q: {{ question }}\nFirst: {{ choices[0].text }}\n")
    plan = make_plan(questions=questions, base_url=stub.url, template=template.read_text(),
                     template_path=str(template))
    with pytest.raises(KvslError) as caught:
        teach(plan, FAST, environ=ENV)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS515" and caught.value.exit_code == ExitCode.ERRORS
    assert (diagnostic.span.path, diagnostic.span.line) == (str(template), 2)
    assert "`q1`" in diagnostic.message
    assert stub.count() == 0


def test_bad_question_line_is_reported_at_file_and_line(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "1+1? [q1]", "answer": "2"}\n{"question": "oops"\n')
    plan = make_plan(questions=questions, base_url=stub.url)
    with pytest.raises(KvslError) as caught:
        teach(plan, FAST, environ=ENV)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code.startswith("KVS6") and diagnostic.span.path == str(questions)
    assert diagnostic.span.line == 2 and stub.count() == 0


def test_a_damaged_trace_file_is_reported_not_appended_to(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    plan = make_plan(questions=questions, base_url=stub.url)
    traces = Path(plan.teacher.traces)  # type: ignore[union-attr]
    traces.parent.mkdir(parents=True)
    # A bad line with its newline (not a torn last line, which is cut off: test_teach_torn.py)
    traces.write_text('{"id": "q1", "question": "x", "steps": ["s"], "answer": "2"}\n{"id": "q2", "quest\n')
    with pytest.raises(KvslError) as caught:
        teach(plan, FAST, environ=ENV)
    assert caught.value.diagnostics[0].code == "KVS501" and caught.value.diagnostics[0].span.line == 2
    assert stub.count() == 0


def test_missing_question_source_and_missing_teacher_block(make_plan: MakePlan) -> None:
    with pytest.raises(KvslError) as caught:
        teach(make_plan(), FAST, environ=ENV)
    assert caught.value.diagnostics[0].code == "KVS517" and caught.value.exit_code == ExitCode.USAGE
    with pytest.raises(KvslError) as caught:
        dry_run(make_plan(teacher=False), FAST)
    assert caught.value.diagnostics[0].code == "KVS516"


def test_the_key_is_scrubbed_even_from_replies_that_echo_it(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    stub.script("[q1]", Reply(content=f"your key is {FAKE_KEY}, no tags"))
    stub.script("[q2]", trace_reply("4", steps=(f"Key {FAKE_KEY} seen.", "2 + 2 = 4.")))
    plan = make_plan(questions=questions, base_url=stub.url)
    report = teach(plan, FAST, environ=ENV)
    assert report.written == 1
    for path in (tmp_path / "traces").iterdir():
        text = path.read_text()
        assert FAKE_KEY not in text and "[redacted]" in text


def test_progress_bar_run(tmp_path: Path, stub: StubServer, make_plan: MakePlan,
                          capsys: pytest.CaptureFixture[str]) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    stub.script("[q2]", Reply(content="no tags"))
    report = teach(make_plan(questions=questions, base_url=stub.url), options(progress=True), environ=ENV)
    assert report.written == 2
    assert "3/3" in capsys.readouterr().err


def test_a_refused_request_is_skipped_without_retry_and_asked_again_later(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    stub.script("[q1]", error_reply(400, "This model's maximum context length is 8 tokens."))
    plan = make_plan(questions=questions, base_url=stub.url)
    report = teach(plan, FAST, environ=ENV)
    assert [(r.id, r.reason, r.permanent) for r in report.skipped] == [("q1", "bad_request", False)]
    assert "maximum context length is 8 tokens" in report.skipped[0].detail
    assert stub.count("[q1]") == 1  # 400 is not retried by the client
    # The rerun asks q1 again; with nothing left to ask, no key is even needed.
    assert teach(plan, FAST, environ=ENV).written == 1
    assert teach(plan, FAST, environ={}).asked == 0


def test_questions_are_known_by_text_and_ids_never_collide(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    # Line-number ids repeat across files: `q1` of this file is not the `q1` already taught.
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    plan = make_plan(questions=questions, base_url=stub.url)
    traces = Path(plan.teacher.traces)  # type: ignore[union-attr]
    traces.parent.mkdir(parents=True)
    traces.write_text(
        json.dumps({"id": "q1", "question": "Another file's first question", "steps": ["s"], "answer": "x"}) + "\n"
        + json.dumps({"id": "old-7", "question": "What is 2 + 2? [q2]", "steps": ["s"], "answer": "4"}) + "\n"
    )
    skip_log_path(traces).write_text(
        json.dumps({"id": "q3", "reason": "wrong_answer", "permanent": True,
                    "question_hash": "0123456789abcdef"}) + "\n"
    )

    report = teach(plan, FAST, environ=ENV)

    assert (report.already_done, report.previously_skipped, report.asked) == (1, 0, 2)
    assert stub.count("[q2]") == 0  # the same question under another id is already taught
    assert trace_ids(traces) == ["q1", "old-7", "plain-q1", "q3"] or trace_ids(traces) == [
        "q1", "old-7", "q3", "plain-q1"]
    assert teach(plan, FAST, environ=ENV).asked == 0
