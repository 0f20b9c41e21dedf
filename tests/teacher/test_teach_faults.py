"""`kvsl teach` on hostile inputs: duplicate questions, broken servers, unwritable files.

Real parts only: the HTTP stub on 127.0.0.1 (teacher_stub.py), real files and folders.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from teacher_stub import Reply, StubServer, html_page, trace_reply, wrong_shape_reply
from teacher_support import FAKE_KEY, MakePlan, plain_questions, write_jsonl
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.traces import load_traces
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.teacher import TeachAborted, TeachOptions, dry_run, iter_skip_log, skip_log_path, teach

ENV = {"OPENAI_API_KEY": FAKE_KEY}
FAST = TeachOptions(max_retries=0, timeout=2.0, concurrency=1)
ROOT = Path(__file__).resolve().parents[2]


# --- duplicate questions ----------------------------------------------------------------


def test_a_question_twice_in_the_source_is_asked_once(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    records = plain_questions(3)
    records.append({"id": "q9", "question": "What is 1 + 1? [q1]", "answer": "2"})  # same text
    records.append({"id": "q10", "question": "  What is 1 +\n 1?   [q1] ", "answer": "2"})  # spacing
    questions = write_jsonl(tmp_path / "q.jsonl", records)
    plan = make_plan(questions=questions, base_url=stub.url)

    assert dry_run(plan, FAST).duplicates == 2
    report = teach(plan, FAST, environ=ENV)

    assert (report.total, report.duplicates, report.asked, report.written) == (5, 2, 3, 3)
    assert stub.count("[q1]") == 1
    traces = load_traces(plan.teacher.traces)  # type: ignore[union-attr]
    assert sorted(t.id for t in traces) == ["q1", "q2", "q3"]  # type: ignore[type-var]


# --- servers that answer 200 with something else ----------------------------------------


@pytest.mark.parametrize(
    "reply, says",
    [
        (html_page(), "not JSON: '<!doctype html>"),
        (wrong_shape_reply(), "no `choices`: not a chat completion"),
        (Reply(raw=b"{this is not json", content_type="application/json"), "not valid JSON"),
        (Reply(body=[1, 2, 3]), "no `choices`"),
        (Reply(raw=b"[" * 100_000 + b"]" * 100_000), "not valid JSON (nested too deeply)"),
        (Reply(raw=b'{"id": "chatcmpl-1", "choices": ['), "not valid JSON"),  # cut short
        (Reply(raw=b'{"id": "\xff\xfe"}'), "not valid JSON"),  # not UTF-8
        (Reply(body={"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": []}), "choices"),
        (Reply(content="<step>Add \ud800 them.</step>\n<answer>2</answer>"), "not Unicode"),
    ],
    ids=["html", "wrong-shape", "broken-json", "json-list", "deep-json", "cut-short",
         "not-utf8", "no-choices", "lone-surrogate"],
)
def test_a_200_that_is_not_a_chat_completion_counts_toward_kvs514(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan, reply: Reply, says: str
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(10))
    stub.responder = lambda prompt: reply
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)

    with pytest.raises(TeachAborted) as caught:
        teach(plan, replace(FAST, max_consecutive_failures=3), environ=ENV)

    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS514" and caught.value.exit_code == ExitCode.ENVIRONMENT
    assert "bad_response" in diagnostic.message and says in diagnostic.message
    assert stub.count() == 3  # stopped at the limit, not one request per question
    assert caught.value.report.written == 0
    log = list(iter_skip_log(skip_log_path(plan.teacher.traces)))  # type: ignore[union-attr]
    assert [r["reason"] for r in log] == ["bad_response"] * 3
    assert all(r["permanent"] is False for r in log)  # asked again by the next run


def test_good_replies_between_bad_ones_reset_the_count(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(4))
    stub.script("[q1]", html_page())
    stub.script("[q3]", wrong_shape_reply())
    plan = make_plan(questions=questions, base_url=stub.url, concurrency=1)

    report = teach(plan, replace(FAST, max_consecutive_failures=2), environ=ENV)

    assert report.written == 2 and report.skip_reasons == {"bad_response": 2}


# --- files that cannot be written -------------------------------------------------------


def _bad_outputs(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """name → (trace file path, code, words of the reason), each set up on disk."""
    folder_in_place = tmp_path / "a" / "t.jsonl"
    folder_in_place.mkdir(parents=True)
    skip_folder = tmp_path / "b" / "t.jsonl"
    skip_log_path(skip_folder).mkdir(parents=True)
    parent_is_a_file = tmp_path / "c" / "file" / "t.jsonl"
    parent_is_a_file.parent.parent.mkdir()
    parent_is_a_file.parent.write_text("not a folder")
    return {
        "folder-in-place": (folder_in_place, "KVS525", "a folder is in its place"),
        "skip-log-folder": (skip_folder, "KVS526", "a folder is in its place"),
        "parent-is-a-file": (parent_is_a_file, "KVS525", "is a file, not a folder"),
    }


@pytest.mark.parametrize("case", ["folder-in-place", "skip-log-folder", "parent-is-a-file"])
def test_an_unwritable_output_is_reported_before_any_request(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan, case: str
) -> None:
    traces, code, reason = _bad_outputs(tmp_path)[case]
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    plan = make_plan(questions=questions, base_url=stub.url, traces=traces)

    with pytest.raises(KvslError) as caught:
        teach(plan, FAST, environ=ENV)

    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == code and reason in diagnostic.message
    assert stub.count() == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_reported_before_any_request(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
        plan = make_plan(questions=questions, base_url=stub.url, traces=folder / "t.jsonl")
        with pytest.raises(KvslError) as caught:
            teach(plan, FAST, environ=ENV)
        assert caught.value.diagnostics[0].code == "KVS525" and stub.count() == 0
    finally:
        folder.chmod(0o755)


def test_missing_folders_are_created(tmp_path: Path, stub: StubServer, make_plan: MakePlan) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(1))
    traces = tmp_path / "new" / "deeper" / "t.jsonl"
    plan = make_plan(questions=questions, base_url=stub.url, traces=traces)
    assert teach(plan, FAST, environ=ENV).written == 1 and traces.is_file()


def test_a_write_that_fails_mid_run_stops_it_and_keeps_what_was_written(
    tmp_path: Path, stub: StubServer, make_plan: MakePlan
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", plain_questions(3))
    traces = tmp_path / "traces" / "t.jsonl"
    plan = make_plan(questions=questions, base_url=stub.url, traces=traces)

    def second_question_breaks_the_skip_log(prompt: str) -> Reply:
        if "[q2]" in prompt:  # a folder appears where the skip log goes, then a reply to log
            skip_log_path(traces).mkdir()
            return Reply(content="no tags at all")
        return trace_reply(str(2 * int(prompt.split("[q")[1].split("]")[0])))

    stub.responder = second_question_breaks_the_skip_log
    with pytest.raises(TeachAborted) as caught:
        teach(plan, FAST, environ=ENV)

    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS526" and "stopped: cannot write the skip log" in diagnostic.message
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert [t.id for t in load_traces(traces)] == ["q1"]  # kept
    assert caught.value.report.written == 1 and stub.count("[q3]") == 0


# --- built-in specs: written only where the user asked ----------------------------------


def _checkout_state() -> dict[str, bytes]:
    folder = ROOT / "specs" / "traces"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_builtin_named_by_its_name_never_writes_into_the_checkout(
    tmp_path: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _checkout_state()
    questions = write_jsonl(tmp_path / "q.jsonl", [{"question": "What is 2 + 2?", "answer": "4"}])
    stub.responder = lambda prompt: trace_reply("4")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["teach", "step-by-step", "--questions", str(questions), "--base-url", stub.url,
            "--max-retries", "0"]

    refused = runner.invoke(app, args, env=ENV)
    assert refused.exit_code == ExitCode.USAGE, refused.output
    assert "KVS518" in refused.output and "--traces" in refused.output
    assert stub.count() == 0

    mine = tmp_path / "mine" / "sbs.jsonl"
    written = runner.invoke(app, [*args, "--traces", str(mine)], env=ENV)
    assert written.exit_code == 0, written.output
    assert [t.question for t in load_traces(mine)] == ["What is 2 + 2?"]
    assert _checkout_state() == before
    assert "Traceback" not in refused.output + written.output


def test_a_builtin_given_by_its_path_is_the_users_file(tmp_path: Path) -> None:
    # Named by path, a spec is written as the user asked (how the checkout's traces are
    # made); only the check is exercised here, with --dry-run writing nothing.
    spec = ROOT / "specs" / "step_by_step.kvs"
    questions = write_jsonl(tmp_path / "q.jsonl", [{"question": "What is 2 + 2?", "answer": "4"}])
    result = CliRunner().invoke(app, ["teach", str(spec), "--questions", str(questions), "--dry-run"])
    assert result.exit_code == 0, result.output


def test_the_summary_says_how_many_duplicates_were_left_out(tmp_path: Path, stub: StubServer) -> None:
    spec = tmp_path / "demo.kvs"
    spec.write_text(
        'style "demo" {\n  description = "Short steps."\n  teacher {\n    model = "m"\n'
        '    template = """Question: {{ question }}\nCorrect answer: {{ answer }}\n"""\n'
        '    traces = "traces/demo.jsonl"\n  }\n  contrast { pairs = 4  shots = 1 }\n}\n',
        encoding="utf-8",
    )
    records = [*plain_questions(2), {"id": "again", "question": "What is 2 + 2? [q2]", "answer": "4"}]
    questions = write_jsonl(tmp_path / "q.jsonl", records)
    result = CliRunner().invoke(
        app, ["teach", str(spec), "--questions", str(questions), "--base-url", stub.url], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert "1 duplicate question in the source left out" in result.output
    assert "asked 2: wrote 2 traces" in result.output and stub.count() == 2
