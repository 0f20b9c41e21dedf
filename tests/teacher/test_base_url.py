"""A teacher base URL that is not an http(s) URL is refused before any request, wherever it
comes from: `--base-url` and OPENAI_BASE_URL (KVS524, exit 2), a spec's `base_url` (KVS108).

Before, `ftp://h` ran until the client said "cannot reach the server" and `http://[::1`
ended in a traceback from the URL parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from teacher_support import FAKE_KEY, plain_questions, write_jsonl
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.lang import check_paths
from kvsl.lang.urls import http_url_problem

runner = CliRunner()

BAD = [
    "ftp://127.0.0.1/v1",
    "127.0.0.1:8000",
    "localhost:8000/v1",
    "http://[::1/v1",
    "http://127.0.0.1:99999/v1",
    "http://127.0.0.1:port/v1",
    "http:///v1",
    "http://a b/v1",
    "http://host/v1\x00",
    "",
]
GOOD = ["http://127.0.0.1:8000/v1", "https://api.openai.com/v1", "http://[::1]:8080/v1",
        "http://user:pw@host/v1"]


@pytest.mark.parametrize("url", BAD[:-1])
def test_bad_urls_have_a_reason(url: str) -> None:
    assert http_url_problem(url)


@pytest.mark.parametrize("url", GOOD)
def test_good_urls_pass(url: str) -> None:
    assert http_url_problem(url) is None


def _spec(tmp_path: Path, base_url: str | None = None) -> Path:
    write_jsonl(tmp_path / "q.jsonl", plain_questions(2))
    line = f'    base_url = "{base_url}"\n' if base_url is not None else ""
    spec = tmp_path / "demo.kvs"
    spec.write_text(
        'style "demo" {\n  description = "Short steps."\n  teacher {\n    model = "m"\n'
        '    template = """Question: {{ question }}\nCorrect answer: {{ answer }}\n"""\n'
        f'    traces = "traces/demo.jsonl"\n    questions = "q.jsonl"\n{line}'
        "  }\n  contrast { pairs = 4  shots = 1 }\n}\n",
        encoding="utf-8",
    )
    return spec


@pytest.mark.parametrize("url", BAD[:-1])
@pytest.mark.parametrize("dry", [False, True])
def test_flag_is_kvs524_before_any_request(tmp_path: Path, url: str, dry: bool) -> None:
    spec = _spec(tmp_path)
    args = ["teach", str(spec), "--base-url", url, *(["--dry-run"] if dry else [])]
    result = runner.invoke(app, args, env={"OPENAI_API_KEY": FAKE_KEY})
    assert result.exit_code == 2, result.output
    assert "error[KVS524]: --base-url" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "traces").exists()  # nothing written


def test_environment_variable_is_kvs524_and_named(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    result = runner.invoke(app, ["teach", str(spec)],
                           env={"OPENAI_API_KEY": FAKE_KEY, "OPENAI_BASE_URL": "http://[::1"})
    assert result.exit_code == 2, result.output
    assert "error[KVS524]: OPENAI_BASE_URL `http://[::1`" in result.stderr
    assert "--> <environment>:1:1" in result.stderr  # not `<command line>`: no flag was given


def test_credentials_in_a_bad_url_are_not_printed(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    result = runner.invoke(app, ["teach", str(spec), "--base-url", "ftp://me:s3cret@h/v1"],
                           env={"OPENAI_API_KEY": FAKE_KEY})
    assert result.exit_code == 2 and "KVS524" in result.stderr
    assert "s3cret" not in result.output + result.stderr


@pytest.mark.parametrize("url", BAD)
def test_spec_base_url_is_kvs108_with_the_reason(tmp_path: Path, url: str) -> None:
    if "\x00" in url:
        pytest.skip("a NUL cannot be written inside a spec string literal as such")
    diagnostics = check_paths([str(_spec(tmp_path, url))])
    codes = [d.code for d in diagnostics]
    assert "KVS108" in codes or (url == "" and codes), codes
