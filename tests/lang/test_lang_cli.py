"""`kvsl check`, `fmt`, `plan`, `explain` through Typer's CliRunner (and the fast path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lang_support import ROOT, VALID, check_in_a_fresh_process, write_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.cli.check_fast import fast_check
from kvsl.lang.codes import CODES

runner = CliRunner()
BROKEN = VALID.replace("pairs = 4", "pairz = 4").replace("shots = 1", "shots = 1\n    select = randm")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_check_clean(tmp_path: Path) -> None:
    write_spec(tmp_path)
    result = invoke("check", str(tmp_path))
    assert result.exit_code == 0
    assert result.output == "all checks passed (1 file)\n"


def test_check_errors_human(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BROKEN)
    result = invoke("check", str(path))
    assert result.exit_code == 1
    out = result.output
    assert f"error[KVS104]: unknown key `pairz` in `contrast`\n --> {path}:5:5\n" in out
    assert "5 |     pairz = 4\n  |     ^^^^^\n" in out
    assert "  = help: did you mean `pairs`?" in out
    # The misspelt `pairs` is one error (KVS104), not also a missing key (KVS106).
    assert "error[KVS108]" in out and "error[KVS106]" not in out
    assert out.rstrip().endswith("found 2 errors in 1 file")
    assert "\033[" not in out  # no colour off a terminal


def test_check_json_is_sorted_and_stable(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BROKEN)
    first = invoke("check", "--format", "json", str(path))
    second = invoke("check", "-f", "json", str(path))
    assert first.exit_code == 1 and first.output == second.output
    data = json.loads(first.output)
    assert [d["code"] for d in data] == ["KVS104", "KVS108"]  # no KVS106 for `pairz`
    assert list(data[0]) == sorted(data[0])
    assert first.output.strip() == json.dumps(data, indent=2, sort_keys=True)


def test_check_github(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BROKEN)
    result = invoke("check", "--format", "github", str(path))
    assert result.exit_code == 1
    lines = result.output.strip().split("\n")
    assert lines[0] == (
        f"::error file={path},line=5,col=5,endLine=5,endColumn=10,title=KVS104::"
        "unknown key `pairz` in `contrast` (help%3A did you mean `pairs`?)".replace("%3A", ":")
    )


def test_check_sarif(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BROKEN)
    result = invoke("check", "--format", "sarif", str(path))
    assert result.exit_code == 1
    log = json.loads(result.output)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules == ["KVS104", "KVS108"]
    first = run["results"][0]
    assert first["ruleId"] == "KVS104" and first["level"] == "error"
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "startColumn": 5, "endLine": 5, "endColumn": 10}


def test_warnings_as_errors(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID.replace("\n}\n", "\n  steer { key = 1 }\n}\n"))
    result = invoke("check", str(path))
    assert result.exit_code == 0 and "warning[KVS123]" in result.output
    assert invoke("check", "--warnings-as-errors", str(path)).exit_code == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = invoke("check", str(tmp_path / "missing.kvs"))
    assert result.exit_code == 2 and "error[KVS008]" in result.output
    assert invoke("check", "--format", "xml", str(tmp_path)).exit_code == 2
    assert invoke("check", "--bogus").exit_code == 2


def test_check_default_is_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke("check")
    assert result.exit_code == 0 and "(1 file)" in result.output


def test_fast_path_matches_typer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(tmp_path, BROKEN)
    for args in ([str(path)], ["--format", "json", str(path)], ["--format=github", str(path)]):
        code = fast_check(args)
        fast = capsys.readouterr().out
        result = invoke("check", *args)
        assert (code, fast) == (result.exit_code, result.output)
    assert fast_check(["--help"]) is None
    assert fast_check(["--format", "xml"]) is None


def test_fmt_check_and_write(tmp_path: Path) -> None:
    messy = write_spec(tmp_path, VALID.replace("  description", "description"), "messy.kvs")
    tidy = write_spec(tmp_path, VALID.replace('"tiny"', '"tidy"'), "tidy.kvs")
    result = invoke("fmt", "--check", str(tmp_path))
    assert result.exit_code == 1
    assert f"would reformat {messy}" in result.output and str(tidy) not in result.output
    assert messy.read_text(encoding="utf-8") != VALID
    result = invoke("fmt", str(tmp_path))
    assert result.exit_code == 0 and f"reformatted {messy}" in result.output
    assert messy.read_text(encoding="utf-8") == VALID
    assert invoke("fmt", "--check", str(tmp_path)).exit_code == 0


def test_fmt_reports_syntax_errors(tmp_path: Path) -> None:
    path = write_spec(tmp_path, 'style "s" {\n')
    result = invoke("fmt", str(path))
    assert result.exit_code == 1 and "error[KVS013]" in result.output
    assert path.read_text(encoding="utf-8") == 'style "s" {\n'
    # The summary under the error counted the broken file as neither formatted nor not.
    assert "1 file left unchanged: errors above" in result.output
    assert "0 files already formatted" not in result.output


def test_fmt_and_check_of_a_missing_spec_offer_the_closest_name(tmp_path: Path) -> None:
    """KVS008 had no help line; a near miss of a spec beside it is now offered."""
    write_spec(tmp_path, name="spec.kvs")
    for command in ("fmt", "check", "plan"):
        result = invoke(command, str(tmp_path / "spex.kvs"))
        assert result.exit_code == 2 and "error[KVS008]" in result.output, command
        assert f"help: did you mean `{tmp_path / 'spec.kvs'}`?" in result.output, command
    result = invoke("fmt", str(tmp_path / "gone" / "x.kvs"))
    assert "help: check the path: a spec is a `.kvs` file" in result.output
    assert "did you mean" not in result.output and "nothing formatted" in result.output


def test_plan_prints_sorted_json_with_hashes(tmp_path: Path) -> None:
    result = invoke("plan", str(write_spec(tmp_path)))
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert len(data["vector_hash"]) == 64 and len(data["plan_hash"]) == 64
    assert result.output.strip() == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def test_plan_errors(tmp_path: Path) -> None:
    result = invoke("plan", str(write_spec(tmp_path, BROKEN)))
    assert result.exit_code == 1 and "error[KVS104]" in result.output
    result = invoke("plan", str(tmp_path))
    assert result.exit_code == 2 and "error[KVS002]" in result.output  # usage: a directory
    assert invoke("plan", str(tmp_path / "missing.kvs")).exit_code == 2


@pytest.mark.parametrize("code", list(CODES))
def test_explain_every_code(code: str) -> None:
    result = invoke("explain", code)
    assert result.exit_code == 0
    entry = CODES[code]
    assert result.output.startswith(f"{code}: {entry.title}")
    assert entry.explanation in result.output
    assert "Example that triggers it:" in result.output and "Fixed:" in result.output


def test_explain_accepts_lowercase_and_digits() -> None:
    assert invoke("explain", "kvs104").output == invoke("explain", "104").output


def test_explain_unknown_code() -> None:
    result = invoke("explain", "KVS999")
    assert result.exit_code == 2 and "error[KVS018]: unknown diagnostic code `KVS999`" in result.output


@pytest.mark.parametrize(("given", "offered"), [("KVS5", "KVS5xx"), ("kvs52", "KVS52x"),
                                                ("KVS1O4", "KVS104"), ("KVS1044", "KVS104")])
def test_explain_offers_the_family_or_the_code_meant(given: str, offered: str) -> None:
    """`KVS5` was offered KVS805 and `KVS1O4` (a letter O) KVS614, by string nearness."""
    result = invoke("explain", given)
    assert result.exit_code == 2 and f"help: did you mean `{offered}`?" in result.output
    assert invoke("explain", offered).exit_code == 0


@pytest.mark.parametrize("family", ["KVS51x", "kvs8xx", "KVS0xx"])
def test_explain_a_family_explains_each_of_its_codes(family: str) -> None:
    # docs/teacher.md says `kvsl explain KVS51x`, docs/serve.md `kvsl explain KVS8xx`.
    prefix = family[:-family.lower().count("x")].upper()
    expected = [code for code in CODES if code.startswith(prefix)]
    assert len(expected) >= 2
    result = invoke("explain", family)
    assert result.exit_code == 0
    headers = [line.split(":")[0] for line in result.output.split("\n") if line.startswith("KVS")]
    assert headers == expected
    assert result.output.count("Example that triggers it:") == len(expected)


@pytest.mark.parametrize("bad", ["KVS1x", "KVS95x", "KVSxxx", "KVS5x1"])
def test_explain_a_malformed_or_empty_family_is_a_usage_error(bad: str) -> None:
    result = invoke("explain", bad)
    assert result.exit_code == 2 and f"error[KVS018]: unknown diagnostic code `{bad}`" in result.output


def test_explain_list() -> None:
    result = invoke("explain", "--list")
    assert result.exit_code == 0 and len(result.output.strip().split("\n")) == len(CODES)


def test_check_does_not_import_heavy_modules(tmp_path: Path) -> None:
    write_spec(tmp_path, VALID.replace(
        "  contrast {", '  teacher {\n    model = "m"\n    template = """{{ question }}"""\n  }\n  contrast {'
    ))
    done = check_in_a_fresh_process(str(tmp_path))
    assert "HEAVY [] 0" in done.stdout, done.stdout + done.stderr


def test_cli_typer_path_does_not_import_torch(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\nfrom kvsl.cli import app\n"
        f"r = CliRunner().invoke(app, ['check', '--format', 'json', {str(tmp_path)!r}])\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'openai') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False, timeout=120
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


def test_fmt_writes_through_a_symlinked_spec(tmp_path: Path) -> None:
    """The rename replaced the link with the new text; the file it pointed at kept the old."""
    real = tmp_path / "specs" / "s.kvs"
    real.parent.mkdir()
    real.write_text('style "x" {description="d"}\n', encoding="utf-8")
    link = tmp_path / "link.kvs"
    link.symlink_to(real)
    result = CliRunner().invoke(app, ["fmt", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and 'description = "d"' in real.read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "says"), [("v.safetensors", "`kvsl inspect` shows it"),
                                            ("m.gguf", "this is a model file")])
def test_an_artifact_or_model_where_a_spec_goes_is_named(tmp_path: Path, name: str, says: str) -> None:
    """`kvsl check/plan/build X.safetensors`: "is this the right file?" said nothing of
    what the file is or which command takes it."""
    path = tmp_path / name
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    for command in ("check", "plan"):
        result = invoke(command, str(path))
        assert result.exit_code == 1 and "error[KVS004]" in result.output, command
        assert says in result.output and "is this the right file" not in result.output
