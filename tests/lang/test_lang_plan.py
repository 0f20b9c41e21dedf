"""Lowering and the plan: every field filled, model kinds, hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from lang_support import ROOT, SPECS, TRACE, VALID, write_spec

from kvsl.lang import check_paths, compile_spec, load_plan
from kvsl.lang.diagnostics import ExitCode, KvslError, Severity
from kvsl.lang.plan import (
    CoefficientOverride,
    GeneratePlan,
    LayerSpan,
    Plan,
)

FULL = '''style "full" {
  description = "Everything."
  model = "smollm2-135m"
  teacher {
    model = "gpt-4o"
    template = """Q: {{ question }}"""
    traces = "traces.jsonl"
    base_url = "http://127.0.0.1:8000/v1"
    format = "arc"
    temperature = 0.5
    max_tokens = 300
    concurrency = 2
  }
  contrast {
    pairs = 4
    shots = 1
    select = nearest
    seed = 3
    system_prompt = "Be brief."
  }
  extract {
    offset_token = " "
    precision = bf16
    batch_size = 8
  }
  steer {
    layers = [1..4, 7, -4..-1]
    key = 0
    value = 5
    at [1..2] { value = 3  key = 0 }
    at [-1] { value = 2 }
  }
  generate {
    max_new_tokens = 64
    mode = sample
    temperature = 0.8
    top_p = 0.95
    seed = 7
    stop = ["\\n\\n", "Question:"]
  }
  markers = ["(?i)answer"]
}
'''


def test_every_field_is_lowered(tmp_path: Path) -> None:
    path = write_spec(tmp_path, FULL)
    plan, diagnostics = compile_spec(path)
    assert diagnostics == []
    assert plan is not None
    assert plan.style == "full" and plan.description == "Everything."
    assert plan.spec_path == str(path.resolve())
    assert (plan.model.kind, plan.model.location) == ("embedded", "smollm2-135m")
    teacher = plan.teacher
    assert teacher is not None
    assert teacher.template_source == "Q: {{ question }}" and teacher.template_path is None
    assert teacher.traces == str(tmp_path / "traces.jsonl")
    assert (teacher.question_format, teacher.temperature, teacher.max_tokens) == ("arc", 0.5, 300)
    assert (teacher.concurrency, teacher.base_url) == (2, "http://127.0.0.1:8000/v1")
    contrast = plan.contrast
    assert contrast.traces == teacher.traces  # defaults to the teacher's trace file
    digest = hashlib.sha256((tmp_path / "traces.jsonl").read_bytes()).hexdigest()
    assert contrast.traces_sha256 == digest
    assert (contrast.pairs, contrast.shots, contrast.selection, contrast.seed) == (4, 1, "nearest", 3)
    assert contrast.system_prompt == "Be brief."
    assert (plan.extract.offset_token, plan.extract.precision, plan.extract.batch_size) == (" ", "bf16", 8)
    assert plan.steer.layers == (LayerSpan(1, 4), LayerSpan(7, 7), LayerSpan(-4, -1))
    assert plan.steer.overrides == (
        CoefficientOverride((LayerSpan(1, 2),), key=0.0, value=3.0),
        CoefficientOverride((LayerSpan(-1, -1),), key=None, value=2.0),
    )
    coefficients = plan.steer.coefficients(30)
    assert coefficients[1] == (0.0, 3.0) and coefficients[29] == (0.0, 2.0)
    assert coefficients[3] == (0.0, 5.0) and 5 not in coefficients
    assert plan.generate == GeneratePlan(64, True, 0.8, 0.95, 7, ("\n\n", "Question:"))
    assert plan.markers.patterns == ("(?i)answer",)
    assert len(plan.vector_hash) == len(plan.plan_hash) == 64


def test_defaults(tmp_path: Path) -> None:
    plan = load_plan(write_spec(tmp_path))
    assert plan.model.kind == "embedded" and plan.teacher is None
    assert plan.steer.layers == (LayerSpan(1, None),) and plan.steer.value == 6.0
    assert plan.generate == GeneratePlan()
    assert plan.contrast.selection == "random"


def test_plan_round_trips_through_dict(tmp_path: Path) -> None:
    plan = load_plan(write_spec(tmp_path, FULL))
    data = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(data) == plan


def _variant(tmp_path: Path, old: str, new: str) -> Plan:
    return load_plan(write_spec(tmp_path / new.replace(" ", "_").replace('"', ""), FULL.replace(old, new)))


def test_generation_default_changes_only_the_plan_hash(tmp_path: Path) -> None:
    base = load_plan(write_spec(tmp_path / "base", FULL))
    for old, new in (
        ("max_new_tokens = 64", "max_new_tokens = 65"),
        ("top_p = 0.95", "top_p = 0.5"),
        ("value = 5", "value = 4"),
        ('stop = ["\\n\\n", "Question:"]', 'stop = ["Q:"]'),
    ):
        other = _variant(tmp_path, old, new)
        assert other.vector_hash == base.vector_hash, new
        assert other.plan_hash != base.plan_hash, new


def test_vector_inputs_change_the_vector_hash(tmp_path: Path) -> None:
    base = load_plan(write_spec(tmp_path / "base", FULL))
    for old, new in (
        ("pairs = 4", "pairs = 3"),
        ("shots = 1", "shots = 2"),
        ("select = nearest", "select = random"),
        ("seed = 3", "seed = 4"),
        ("precision = bf16", "precision = fp32"),
        ('system_prompt = "Be brief."', 'system_prompt = "Be terse."'),
        ('model = "smollm2-135m"', 'model = "Qwen/Qwen2.5-0.5B-Instruct"'),
    ):
        other = _variant(tmp_path, old, new)
        assert other.vector_hash != base.vector_hash, new
        assert other.plan_hash != base.plan_hash, new


def test_teacher_edits_change_only_the_plan_hash(tmp_path: Path) -> None:
    """Extraction never reads the teacher: its template only shapes the traces, which
    count by content. So its edits (a comment included) leave the vectors built."""
    base = load_plan(write_spec(tmp_path / "base", FULL))
    for old, new in (
        ('template = """Q: {{ question }}"""', 'template = """Question: {{ question }}"""'),
        ('template = """Q: {{ question }}"""', 'template = """{# terse #}Q: {{ question }}"""'),
        ('model = "gpt-4o"', 'model = "gpt-4o-mini"'),
        ("temperature = 0.5", "temperature = 0.7"),
    ):
        other = _variant(tmp_path, old, new)
        assert other.teacher != base.teacher, new
        assert other.vector_hash == base.vector_hash, new
        assert other.plan_hash != base.plan_hash, new


def test_a_template_file_edit_keeps_the_vector_hash(tmp_path: Path) -> None:
    text = FULL.replace('template = """Q: {{ question }}"""', 'template = "prompt.j2"')
    (tmp_path / "prompt.j2").write_text("Q: {{ question }}\n", encoding="utf-8")
    path = write_spec(tmp_path, text)
    before = load_plan(path)
    (tmp_path / "prompt.j2").write_text("{# says why #}\nQuestion: {{ question }}\n", "utf-8")
    after = load_plan(path)
    assert after.teacher and before.teacher
    assert after.teacher.template_source != before.teacher.template_source
    assert (after.vector_hash, after.plan_hash != before.plan_hash) == (before.vector_hash, True)


def test_trace_content_changes_the_vector_hash(tmp_path: Path) -> None:
    path = write_spec(tmp_path, FULL)
    before = load_plan(path)
    (tmp_path / "traces.jsonl").write_text(TRACE * 6, encoding="utf-8")
    after = load_plan(path)
    assert after.contrast.traces_sha256 != before.contrast.traces_sha256
    assert after.vector_hash != before.vector_hash


def test_moving_a_spec_keeps_both_hashes(tmp_path: Path) -> None:
    one = load_plan(write_spec(tmp_path / "one", FULL))
    two = load_plan(write_spec(tmp_path / "elsewhere" / "two", FULL))
    assert (one.vector_hash, one.plan_hash) != ("", "")
    assert one.vector_hash == two.vector_hash
    assert replace(one, spec_path="", contrast=two.contrast, teacher=two.teacher).plan_hash == one.plan_hash


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("smollm2-135m", "embedded"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "hub"),
        ("gpt2", "hub"),
        ("models/tiny.gguf", "gguf"),
        ("./models/local", "directory"),
        ("models/local", "directory"),
    ],
)
def test_model_kinds(tmp_path: Path, model: str, kind: str) -> None:
    (tmp_path / "models" / "local").mkdir(parents=True)
    (tmp_path / "models" / "tiny.gguf").write_bytes(b"GGUF")
    text = VALID.replace('description = "A tiny style."', f'description = "x"\n  model = "{model}"')
    plan = load_plan(write_spec(tmp_path, text))
    assert plan.model.kind == kind
    if kind in ("gguf", "directory"):
        assert plan.model.location == str((tmp_path / model).resolve())
    else:
        assert plan.model.location == model


def test_template_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("Q: {{ question }}\n", encoding="utf-8")
    text = VALID.replace(
        "  contrast {",
        '  teacher {\n    model = "m"\n    template = "t.j2"\n  }\n  contrast {',
    )
    plan = load_plan(write_spec(tmp_path, text))
    assert plan.teacher is not None
    assert plan.teacher.template_source == "Q: {{ question }}\n"
    assert plan.teacher.template_path == str(tmp_path / "t.j2")


def test_teacher_without_traces_yet_is_a_warning(tmp_path: Path) -> None:
    text = FULL.replace('traces = "traces.jsonl"', 'traces = "new.jsonl"')
    plan, diagnostics = compile_spec(write_spec(tmp_path, text))
    assert plan is not None and plan.contrast.traces_sha256 == ""
    assert [(d.code, d.severity) for d in diagnostics] == [("KVS116", Severity.WARNING)]


def test_load_plan_raises_with_errors_only(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID.replace("pairs = 4", "pairs = 0").replace("value", "x"))
    with pytest.raises(KvslError) as caught:
        load_plan(path)
    assert caught.value.exit_code == ExitCode.ERRORS
    assert {d.code for d in caught.value.diagnostics} == {"KVS109"}  # no KVS110 on a bad N
    assert all(d.severity is Severity.ERROR for d in caught.value.diagnostics)


def test_extends_merges_and_resolves_paths_per_file(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "traces.jsonl").write_text(TRACE * 5, encoding="utf-8")
    (tmp_path / "shared" / "base.kvs").write_text(
        'base "b" {\n  contrast { traces = "traces.jsonl"  pairs = 9  shots = 2 }\n'
        "  steer { value = 3  at [1..2] { value = 1 } }\n  generate { max_new_tokens = 10 }\n}\n",
        encoding="utf-8",
    )
    child = tmp_path / "child.kvs"
    child.write_text(
        'style "c" {\n  extends = "shared/base.kvs"\n  description = "d"\n'
        "  contrast { pairs = 5 }\n  steer { key = 0 }\n}\n",
        encoding="utf-8",
    )
    plan = load_plan(child)
    assert plan.contrast.traces == str(tmp_path / "shared" / "traces.jsonl")
    assert (plan.contrast.pairs, plan.contrast.shots) == (5, 2)
    assert plan.steer.value == 3.0 and plan.steer.overrides[0].value == 1.0
    assert plan.generate.max_new_tokens == 10
    assert check_paths([str(tmp_path)]) == []  # a base need not be complete


def test_base_spec_has_no_plan(tmp_path: Path) -> None:
    path = tmp_path / "b.kvs"
    path.write_text('base "b" { steer { value = 3 } }\n', encoding="utf-8")
    plan, diagnostics = compile_spec(path)
    assert plan is None and [d.code for d in diagnostics] == ["KVS122"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_repository_specs_compile(path: Path) -> None:
    plan, diagnostics = compile_spec(path)
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if path.name.startswith("_base"):
        assert [d.code for d in errors] == ["KVS122"]
        return
    assert errors == [], errors
    assert plan is not None and plan.spec_path == str(path)
    assert str(ROOT) in plan.contrast.traces
