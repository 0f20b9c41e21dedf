"""JSON the standard decoder fails on without a JSONDecodeError, in every reader of kvsl.

`[[[[...]]]]` a few thousand levels deep raises RecursionError, and an integer of more
than 4,300 digits a plain ValueError (Python's int-from-string limit); readers caught
JSONDecodeError (or ValueError) only, so a trace file line ended `kvsl build` and
`kvsl traces import` with a traceback, and the same held for question pools, prompt
files, the eval cache, the skip log, request bodies and LSP messages. The class is closed
at one place, `kvsl.base.jsonl.loads`; the first test keeps it closed (no other
`json.loads` in kvsl reads outside data), the others check each reader's own refusal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kvsl.base.jsonl import loads
from kvsl.lang.diagnostics import KvslError

ROOT = Path(__file__).resolve().parents[2]
DEEP = "[" * 50_000 + "]" * 50_000
DEEP_OBJECT = '{"a": ' * 50_000 + "1" + "}" * 50_000
LONG_NUMBER = '{"question": "q", "steps": ["s"], "answer": ' + "9" * 5000 + "}"
# valid JSON syntax, but not Unicode text: a TypeError in a tokenizer, UnicodeEncodeError on write
LONE_SURROGATE = '{"question": "q \\ud800", "steps": ["s"], "answer": "a", "prompt": "\\udcff"}'
HOSTILE = [DEEP_OBJECT, LONG_NUMBER, LONE_SURROGATE]
# json.loads of kvsl's own json.dumps output (a round trip), not of anything read in
OWN_ROUND_TRIPS = {"kvsl/eval/runner.py", "kvsl/eval/sweep.py"}


def test_json_that_others_wrote_is_parsed_only_by_the_guarded_loads() -> None:
    found = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "kvsl").rglob("*.py")
        if re.search(r"\bjson\.loads?\(", path.read_text(encoding="utf-8"))
    }
    assert found - OWN_ROUND_TRIPS == {"kvsl/base/jsonl.py"}, found


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT, DEEP.encode(), LONG_NUMBER, LONE_SURROGATE])
def test_each_is_a_decode_error(text: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError, match=r"nested too deeply|too many digits|surrogate"):
        loads(text)
    pair = '"\\ud83d\\ude00 \\\\udcff"'  # a pair (one emoji), then an escaped backslash
    assert loads(pair) == "\U0001f600 \\udcff"
    assert loads(LONE_SURROGATE, unicode_only=False)["prompt"] == "\udcff"  # the LSP's choice
    assert loads("[" * 100 + "]" * 100) == json.loads("[" * 100 + "]" * 100)
    assert loads("9" * 4000) == 10**4000 - 1  # within Python's limit: still a number
    with pytest.raises(UnicodeDecodeError):  # other refusals pass through as they were
        loads(b'"\xff"')


def _lines(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD_TRACE = '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}'


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_trace_file_line(tmp_path: Path, bad: str) -> None:
    from kvsl.formats.traces import load_traces

    with pytest.raises(KvslError) as raised:
        load_traces(_lines(tmp_path, GOOD_TRACE, bad))
    [found] = raised.value.diagnostics
    assert (found.code, found.span.line) == ("KVS501", 2)
    assert any(why in found.message for why in ("nested", "too many digits", "surrogate"))


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_question_pool_line(tmp_path: Path, bad: str) -> None:
    from kvsl.formats.questions import load_benchmark

    good = '{"question": "1+1?", "answer": "1+1=2\\n#### 2"}'
    with pytest.raises(KvslError) as raised:
        load_benchmark(_lines(tmp_path, good, bad), "gsm8k")
    [found] = raised.value.diagnostics
    assert (found.code, found.span.line) == ("KVS602", 2)


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_prompt_file_line(bad: str) -> None:
    from kvsl.cli.run_commands import parse_prompt_lines

    with pytest.raises(KvslError) as raised:
        parse_prompt_lines('{"prompt": "hi"}\n' + bad, "prompts.jsonl", jsonl=True)
    assert [d.code for d in raised.value.diagnostics] == ["KVS454"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_the_eval_cache_and_the_skip_log_skip_the_line(tmp_path: Path, bad: str) -> None:
    from kvsl.eval.results_cache import ResultsCache
    from kvsl.teacher.skiplog import iter_skip_log

    good = '{"key": "k", "response": "r", "tokens": 3}'
    cache = ResultsCache(_lines(tmp_path, good, bad))
    assert "k" in cache and [w.code for w in cache.warnings] == ["KVS613", "KVS620"]
    assert list(iter_skip_log(_lines(tmp_path, bad, '{"id": "a"}'))) == [{"id": "a"}]


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_request_body_and_a_device_map(bad: str) -> None:
    from kvsl.engine.placement import parse_device_map
    from kvsl.serve.schemas import ApiError, parse_body

    with pytest.raises(ApiError) as refused:
        parse_body(bad.encode())
    assert refused.value.status == 400
    with pytest.raises(KvslError):
        parse_device_map(bad)
