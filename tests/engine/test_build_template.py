"""What the vector hash leaves out: the teacher's template never reaches extraction, so
editing it (or only a comment in it) leaves the built vectors up to date; the traces it
produced still count by content. And an artifact named by an earlier hash rule is rebuilt
once, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, tiny_spec
from typer.testing import CliRunner

import kvsl.engine.extract as extract
import kvsl.engine.models as models
from kvsl.cli import app
from kvsl.engine.artifact import load_artifact
from kvsl.lang import load_plan

TEACHER = (
    '  teacher {\n    model = "gpt-4o"\n    template = "prompt.j2"\n'
    '    traces = "traces.jsonl"\n  }\n'
)


@pytest.fixture
def taught_spec(tmp_path, tiny_model_dir) -> Path:
    """A tiny spec whose traces a teacher fills from the template file `prompt.j2`."""
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    (tmp_path / "prompt.j2").write_text("Q: {{ question }}\n", encoding="utf-8")
    text = tiny_spec(tiny_model_dir, pairs=3, value=4)
    spec = tmp_path / "tiny.kvs"
    spec.write_text(text.replace("  contrast {", TEACHER + "  contrast {", 1), encoding="utf-8")
    return spec


def _build(spec: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["build", str(spec), "--quiet"])
    return result.exit_code, result.stdout, result.stderr


def _no_extraction(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the vectors were extracted again")

    monkeypatch.setattr(models, "load_model", refuse)
    monkeypatch.setattr(extract, "extract_means", refuse)


def test_editing_only_the_template_builds_nothing(taught_spec, monkeypatch):
    code, out, _ = _build(taught_spec)
    assert code == 0
    path = Path(out.strip().splitlines()[-1])
    before = load_plan(taught_spec)
    stamp = path.stat().st_mtime_ns
    for template in (
        "{# a comment only #}\nQ: {{ question }}\n",
        "Question: {{ question }}\nThink in numbered steps.\n",
    ):
        (taught_spec.parent / "prompt.j2").write_text(template, encoding="utf-8")
        after = load_plan(taught_spec)
        assert after.teacher is not None and after.teacher.template_source == template
        assert after.vector_hash == before.vector_hash
        assert after.plan_hash != before.plan_hash
        _no_extraction(monkeypatch)
        code, out, err = _build(taught_spec)
        assert code == 0, err
        assert "nothing to build" in err
        assert Path(out.strip().splitlines()[-1]) == path
        assert path.stat().st_mtime_ns == stamp
        monkeypatch.undo()


def test_editing_the_traces_still_rebuilds(taught_spec):
    code, out, _ = _build(taught_spec)
    first = Path(out.strip().splitlines()[-1])
    before = load_plan(taught_spec)
    traces = taught_spec.parent / "traces.jsonl"
    traces.write_text(
        traces.read_text(encoding="utf-8").replace("Start with 2.", "Begin with 2."), "utf-8"
    )
    after = load_plan(taught_spec)
    assert after.vector_hash != before.vector_hash
    code, out, err = _build(taught_spec)
    assert code == 0, err
    second = Path(out.strip().splitlines()[-1])
    assert second != first and "nothing to build" not in err
    assert load_artifact(second).manifest["vector_hash"] == after.vector_hash


def test_an_artifact_named_by_an_earlier_hash_rule_is_rebuilt_once(taught_spec):
    """An earlier kvsl named the same plan's artifact by another vector hash (it hashed
    the template): the rebuild says why, happens once, and keeps the old file."""
    code, out, _ = _build(taught_spec)
    path = Path(out.strip().splitlines()[-1])
    older = path.with_name("tiny-0123456789ab.safetensors")  # as an earlier kvsl named it
    path.rename(older)
    code, out, err = _build(taught_spec)
    assert code == 0, err
    assert "built by an earlier kvsl" in err and older.name in err
    assert "[yellow]" not in err and "[/]" not in err  # styled text, not markup printed raw
    assert Path(out.strip().splitlines()[-1]) == path and path.is_file() and older.is_file()
    code, _, err = _build(taught_spec)
    assert "nothing to build" in err and "earlier kvsl" not in err


def test_a_changed_plan_beside_an_older_artifact_says_nothing_of_hash_rules(taught_spec):
    _build(taught_spec)
    taught_spec.write_text(
        taught_spec.read_text(encoding="utf-8").replace("seed = 0", "seed = 1"), "utf-8"
    )
    code, _, err = _build(taught_spec)
    assert code == 0 and "earlier kvsl" not in err
