"""Built-in style names as command targets (`kvsl.builtin`) and `kvsl styles`."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsl.base import locations
from kvsl.builtin import (
    builtin_spec,
    builtin_specs_dir,
    builtin_styles,
    resolve_target,
    spec_description,
)
from kvsl.cli import app
from kvsl.lang import check_paths
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.styles import BUILTIN_STYLES, StyleInfo

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_own_specs_folder() -> None:
    # The tests run from a checkout (plain or editable install): no package data there.
    assert builtin_specs_dir() == ROOT / "specs"
    assert not locations.is_packaged(ROOT / "specs" / "step_by_step.kvs")


def test_every_builtin_style_has_a_spec_that_checks_clean() -> None:
    styles = builtin_styles()
    assert [s.name for s in styles] == list(BUILTIN_STYLES)
    for style in styles:
        assert style.spec_path.is_file(), style
    assert check_paths([str(s.spec_path) for s in styles]) == []


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("step-by-step", "step_by_step.kvs"),
        ("step_by_step", "step_by_step.kvs"),
        ("step_by_step.kvs", "step_by_step.kvs"),
        ("Strategy-And-Execute", "strategy_execute.kvs"),
        ("stepwise", "step_by_step.kvs"),  # an alias kvsl.styles accepts
        ("analogical", "analogical.kvs"),
    ],
)
def test_name_resolves_to_the_builtin_spec(name: str, file: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no file of that name here
    assert resolve_target(name) == builtin_specs_dir() / file
    assert builtin_spec(name) == builtin_specs_dir() / file


def test_a_real_path_always_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "step-by-step").write_text("mine", encoding="utf-8")
    (tmp_path / "analogical.kvs").write_text("mine", encoding="utf-8")
    assert resolve_target("step-by-step") == Path("step-by-step")
    assert resolve_target("analogical.kvs") == Path("analogical.kvs")
    assert resolve_target(tmp_path / "step-by-step") == tmp_path / "step-by-step"


def test_a_missing_path_is_left_to_the_command(tmp_path, monkeypatch) -> None:
    # Anything path-like goes on unchanged, to the command's own "no such file" report.
    monkeypatch.chdir(tmp_path)
    for text in ("specs/step_by_step.kvs", "./step-by-step", "~/analogical.kvs"):
        assert resolve_target(text) == Path(text)


def test_unknown_name_is_a_coded_usage_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KvslError) as caught:
        resolve_target("step-by-stp")
    err = caught.value
    assert err.exit_code is ExitCode.USAGE
    (diagnostic,) = err.diagnostics
    assert diagnostic.code == "KVS008"
    assert "`step-by-stp` is neither a file nor a built-in style" in diagnostic.message
    assert diagnostic.help is not None
    assert "did you mean `step-by-step`?" in diagnostic.help
    assert all(f"`{name}`" in diagnostic.help for name in BUILTIN_STYLES)
    with pytest.raises(KvslError) as caught:
        resolve_target("nonesuch", code="KVS455")
    assert caught.value.diagnostics[0].code == "KVS455"


def test_packaged_data_wins_over_the_checkout(tmp_path, monkeypatch) -> None:
    packaged = tmp_path / "_builtin"
    (packaged / "specs").mkdir(parents=True)
    monkeypatch.setattr(locations, "PACKAGED_DIR", packaged)
    assert builtin_specs_dir() == packaged / "specs"
    assert resolve_target("causal-chain") == packaged / "specs" / "causal_chain.kvs"
    assert locations.is_packaged(packaged / "specs" / "causal_chain.kvs")


def test_styles_command_lists_names_descriptions_and_paths() -> None:
    result = CliRunner().invoke(app, ["styles"])
    assert result.exit_code == 0, result.output
    for style in builtin_styles():
        assert style.name in result.output
        assert style.description in result.output
        assert str(style.spec_path) in result.output
    rows = json.loads(CliRunner().invoke(app, ["styles", "--json"]).output)
    held_out = rows[0].pop("held_out")  # tests/styles/test_evidence_summary.py checks it
    assert rows[0] == {
        "name": "step-by-step",
        "description": spec_description(builtin_specs_dir() / "step_by_step.kvs"),
        "spec": str(builtin_specs_dir() / "step_by_step.kvs"),
    }
    assert held_out["model"] == "smollm2-135m"
    assert len(rows) == len(BUILTIN_STYLES)


def test_plan_accepts_a_builtin_name(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plan", "step-by-step"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["spec_path"] == str(builtin_specs_dir() / "step_by_step.kvs")
    assert plan["style"] == "step-by-step"


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["plan", "nonesuch"], "KVS008"),
        (["build", "nonesuch"], "KVS008"),
        (["eval", "nonesuch", "--methods", "plain"], "KVS008"),
        (["run", "nonesuch", "--device", "cpu", "--prompt", "hi"], "KVS455"),
    ],
)
def test_unknown_name_on_each_command(command, code, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"error[{code}]: `nonesuch` is neither a file nor a built-in style" in result.output
    assert "Traceback" not in result.output



def test_each_description_is_written_once_in_its_spec() -> None:
    # The spec file is the one source: `kvsl styles` shows its `description` verbatim,
    # read here with a plain regex rather than through kvsl's parser.
    written = re.compile(r'^\s*description\s*=\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)
    for style in builtin_styles():
        found = written.findall(style.spec_path.read_text(encoding="utf-8"))
        assert len(found) == 1, style.spec_path
        assert style.description == found[0].replace('\\"', '"')
        assert style.description.endswith(".") and len(style.description) > 20
    # ... and the registry holds no second copy that could drift.
    assert "description" not in {f.name for f in dataclasses.fields(StyleInfo)}
