"""The front doors call one request function each: called without Typer, it gives what
the command prints (docs/architecture.md, "Front doors call one request function").

A tiny random Llama saved as a local model directory stands in for a real model; the
teacher runs dry (no request is sent). `kvsl tune`'s `run_tune` is called without Typer
throughout tests/tune.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, make_tiny_model, tiny_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.lang.diagnostics import KvslError

PROMPT = "Why is the sky blue?"
EVAL_FIXTURES = Path(__file__).parent / "eval" / "fixtures"
CLI = Path(__file__).resolve().parents[1] / "kvsl" / "cli"


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model, tokenizer = make_tiny_model("llama")
    path = tmp_path_factory.mktemp("front-doors") / "llama"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def spec(tmp_path: Path, model_dir: Path) -> Path:
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    path = tmp_path / "tiny.kvs"
    path.write_text(
        tiny_spec(model_dir, style="tiny-steps", description="a tiny spec", max_new_tokens=6),
        encoding="utf-8",
    )
    return path


def test_build_request_builds_what_kvsl_build_then_finds_up_to_date(spec: Path) -> None:
    from kvsl.engine.build_request import BuildRequest, build_spec

    result = build_spec(BuildRequest(spec, precision="fp32"))
    assert result.built and result.path.is_file()
    again = _cli("build", spec, "--precision", "fp32")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == str(result.path)
    assert "up to date" in again.stderr


def test_run_request_reports_exactly_what_kvsl_run_prints(spec: Path) -> None:
    from kvsl.engine.run import RunRequest, run

    prompts = ((PROMPT, {"id": 7}), ("Is ice cold?", {}))
    request = RunRequest(spec, prompts, value=3.0, compare=True, precision="fp32")
    result = run(request)
    printed = _cli("run", spec, "--file", _prompt_file(spec.parent, prompts), "--value", "3",
                   "--compare", "--precision", "fp32", "--format", "json")
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == result.report()
    assert [r["id"] for r in result.records if "id" in r] == [7]
    assert result.coefficients == {1: (0.0, 3.0)} and not result.streamed


def test_run_request_streams_one_prompt_through_the_callback(spec: Path) -> None:
    from kvsl.engine.run import RunRequest, run

    pieces: list[str] = []
    result = run(RunRequest(spec, ((PROMPT, {}),), precision="fp32"), stream=pieces.append)
    assert result.streamed
    assert "".join(pieces) == result.records[0]["steered"] + "\n"
    printed = _cli("run", spec, "--prompt", PROMPT, "--precision", "fp32")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == "".join(pieces)


def test_run_request_errors_are_the_commands_coded_diagnostics(spec: Path) -> None:
    from kvsl.engine.run import RunRequest, run

    with pytest.raises(KvslError) as err:
        run(RunRequest(spec, ((PROMPT, {}),), controls={"min_new_tokens": 9}, max_new_tokens=2))
    assert [d.code for d in err.value.diagnostics] == ["KVS457"]


def test_eval_request_gives_the_report_kvsl_eval_prints(model_dir: Path, tmp_path: Path) -> None:
    from kvsl.eval.request import EvalRequest, run
    from kvsl.lang.plan import GenerationSettings

    data = str(EVAL_FIXTURES / "arc.jsonl")
    request = EvalRequest(target=None, benchmark="arc", data=data, methods=("plain",),
                          model=str(model_dir), limit=2, decode=GenerationSettings(max_new_tokens=4),
                          precision="fp32", device="cpu", out_dir=str(tmp_path))
    outcome = run(request)
    assert outcome.is_main and not outcome.is_sweep
    assert [s.method for s in outcome.summaries or []] == ["plain"]
    assert outcome.report["generated_now"] == 2
    printed = _cli("eval", "--model", model_dir, "--benchmark", "arc", "--data", data,
                   "--methods", "plain", "--limit", "2", "--max-new-tokens", "4",
                   "--precision", "fp32", "--out", tmp_path, "--format", "json")
    assert printed.exit_code == 0, printed.output
    report = json.loads(printed.stdout)
    assert report["generated_now"] == 0  # the same request: every answer came from the cache
    assert report["methods"] == outcome.report["methods"]
    assert report["report_path"] == outcome.report["report_path"]


def _teacher_spec(tmp_path: Path) -> Path:
    (tmp_path / "q.jsonl").write_text(
        "".join(json.dumps({"id": f"q{k}", "question": f"What is {k} + {k}?", "answer": str(2 * k)})
                + "\n" for k in (1, 2, 3)),
        encoding="utf-8",
    )
    path = tmp_path / "demo.kvs"
    path.write_text(
        'style "demo" {\n  description = "Short steps."\n  teacher {\n'
        '    model = "gpt-4o-mini"\n'
        '    template = """Question: {{ question }}\nCorrect answer: {{ answer }}\n"""\n'
        '    traces = "traces/demo.jsonl"\n    questions = "q.jsonl"\n  }\n'
        "  contrast { pairs = 4  shots = 1 }\n}\n",
        encoding="utf-8",
    )
    return path


def test_teach_request_dry_run_renders_the_prompts_kvsl_teach_prints(tmp_path: Path) -> None:
    from kvsl.teacher.request import TeachOptions, TeachRequest, teach_spec

    spec = _teacher_spec(tmp_path)
    report = teach_spec(TeachRequest(spec, TeachOptions(limit=2), dry_run=True))
    assert [p.id for p in report.prompts] == ["q1", "q2"]
    printed = _cli("teach", spec, "--limit", "2", "--dry-run")
    assert printed.exit_code == 0, printed.output
    expected = "".join(f"===== {p.id} =====\n{p.prompt.rstrip()}\n\n" for p in report.prompts)
    assert printed.stdout == expected
    assert not (tmp_path / "traces").exists()  # a dry run writes nothing


def test_teach_request_keeps_a_builtin_specs_trace_file() -> None:
    from kvsl.builtin import resolve_target
    from kvsl.teacher.request import TeachRequest, teach_spec

    path = resolve_target("step-by-step")
    with pytest.raises(KvslError) as err:
        teach_spec(TeachRequest(path, given="step-by-step"))
    assert [d.code for d in err.value.diagnostics] == ["KVS518"]


def _prompt_file(folder: Path, prompts: tuple) -> Path:
    path = folder / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": text, **extra}) + "\n" for text, extra in prompts),
        encoding="utf-8",
    )
    return path


def test_cli_functions_stay_short() -> None:
    """A command parses options, builds a request, calls one function and renders: no
    function in kvsl/cli/ is longer than about 80 lines (the signature included)."""
    long = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
