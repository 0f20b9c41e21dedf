"""`kvsl run` end to end on a tiny random Llama saved as a local model directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from tiny_models import make_tiny_model, tiny_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.cli.run_commands import parse_layers
from kvsl.engine.vectors import SteeringVectors
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import (
    ContrastPlan,
    ExtractPlan,
    GeneratePlan,
    LayerSpan,
    ModelRef,
    Plan,
    SteerPlan,
)

PROMPT = "Why is the sky blue?"


def _plan(ref: ModelRef, style: str = "tiny-style", max_new_tokens: int = 8) -> Plan:
    return Plan.create(
        style=style,
        description="a test style",
        spec_path="/nonexistent/tiny.kvs",
        model=ref,
        teacher=None,
        contrast=ContrastPlan(traces="/nonexistent/t.jsonl", traces_sha256="", pairs=4,
                              shots=1, selection="random", seed=0),
        extract=ExtractPlan(),
        steer=SteerPlan(layers=(LayerSpan(1, None),), key=0.0, value=6.0),
        generate=GeneratePlan(max_new_tokens=max_new_tokens),
    )


def _write_artifact(path: Path, plan: Plan, loaded, scale: float = 3.0, *,
                    with_plan: bool = True) -> Path:
    from kvsl.engine.artifact import make_manifest, save_artifact

    geometry = loaded.geometry
    gen = torch.Generator().manual_seed(0)
    shape = (geometry.kv_heads, geometry.head_dim)
    keys = {i: scale * torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
    values = {i: scale * torch.randn(shape, generator=gen) for i in range(geometry.num_layers)}
    offset = loaded.tokenizer.encode("\n", add_special_tokens=False)[0]
    manifest = make_manifest(plan, loaded, offset_token_id=offset, pairs=4, compute_dtype="float32")
    if not with_plan:
        manifest.pop("plan")
    return save_artifact(SteeringVectors(keys, values, "\n", manifest), path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny Llama directory, its loaded model, and artifacts for it (and a foreign one)."""
    from kvsl.engine.models import load_model

    root = tmp_path_factory.mktemp("run-cli")
    dirs = {}
    for arch in ("llama", "qwen2"):
        model, tokenizer = make_tiny_model(arch)
        dirs[arch] = root / arch
        model.save_pretrained(dirs[arch])
        tokenizer.save_pretrained(dirs[arch])
    ref = ModelRef("tiny-llama", "directory", str(dirs["llama"]))
    loaded = load_model(ref, dtype=torch.float32)
    plan = _plan(ref)
    foreign = load_model(ModelRef("tiny-qwen2", "directory", str(dirs["qwen2"])))
    return {
        "loaded": loaded,
        "plan": plan,
        "artifact": _write_artifact(root / "tiny.safetensors", plan, loaded),
        "builtin": _write_artifact(root / "sbs.safetensors", _plan(ref, "step-by-step"), loaded),
        # Built on the Qwen2 model, but its plan names the Llama: shapes match, identity not.
        "foreign": _write_artifact(root / "foreign.safetensors", plan, foreign),
        "no_plan": _write_artifact(root / "noplan.safetensors", plan, loaded, with_plan=False),
        "root": root,
    }


def _run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(app, ["run", *map(str, args)], input=input)


def _expected(setup, prompts, coefficients=None, vectors_path=None):
    import kvsl
    from kvsl.engine.artifact import load_artifact

    loaded = setup["loaded"]
    vectors = load_artifact(vectors_path or setup["artifact"])
    return kvsl.generate(loaded.model, loaded.tokenizer, prompts, vectors,
                         coefficients=coefficients, max_new_tokens=8)


def test_parse_layers_accepts_the_spec_forms_and_rejects_others():
    assert parse_layers("1..,-3") == (LayerSpan(1, None), LayerSpan(-3, -3))
    assert parse_layers("[0, 2..4]") == (LayerSpan(0, 0), LayerSpan(2, 4))
    assert parse_layers("..2") == (LayerSpan(0, 2),)
    assert parse_layers("all") == (LayerSpan(0, None),)
    for bad in ("1-3", "", "a", "1,,2", "1...3", ".."):
        with pytest.raises(KvslError) as err:
            parse_layers(bad)
        assert err.value.diagnostics[0].code == "KVS450"


def test_text_streams_the_steered_generation(setup):
    result = _run(setup["artifact"], "--prompt", PROMPT)
    assert result.exit_code == 0, result.output
    assert result.stdout == _expected(setup, PROMPT)[0] + "\n"
    assert "c_v=6" in result.stderr


def test_json_reports_the_steered_text_and_the_resolved_coefficients(setup):
    result = _run(setup["artifact"], "--prompt", PROMPT, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["coefficients"] == {"1": [0.0, 6.0]}
    assert data["results"] == [{"prompt": PROMPT, "steered": _expected(setup, PROMPT)[0]}]
    assert data["generation"]["max_new_tokens"] == 8


def test_jsonl_file_compare_batched_keeps_order_and_extra_fields(setup, tmp_path):
    prompts = ["Is ice cold?", "What is 2 + 3? Answer in words, please.", "Hi"]
    file = tmp_path / "p.jsonl"
    file.write_text(
        json.dumps({"prompt": prompts[0], "id": 7}) + "\n\n" + json.dumps(prompts[1]) + "\n"
        + json.dumps({"prompt": prompts[2]}) + "\n",
        encoding="utf-8",
    )
    result = _run(setup["artifact"], "--file", file, "--compare", "--format", "jsonl",
                  "--batch-size", "2")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["prompt"] for line in lines] == prompts
    assert lines[0]["id"] == 7
    assert [line["steered"] for line in lines] == _expected(setup, prompts)
    assert [line["plain"] for line in lines] == _expected(setup, prompts, {1: (0.0, 0.0)})
    assert any(line["plain"] != line["steered"] for line in lines)


def test_compare_in_text_shows_both_side_by_side(setup):
    result = _run(setup["artifact"], "--prompt", PROMPT, "--compare")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "plain" in line)
    assert "steered" in header  # one table row holds both columns


def test_stdin_prompts_one_per_line(setup):
    result = _run(setup["artifact"], "--format", "jsonl", input="Is ice cold?\nHi\n")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["prompt"] for line in result.stdout.splitlines()] == [
        "Is ice cold?", "Hi"]


def test_overrides_value_zero_is_plain_and_layers_key_are_used(setup):
    result = _run(setup["artifact"], "--prompt", PROMPT, "--value", "0", "--compare",
                  "--format", "json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)["results"]
    assert record["steered"] == record["plain"]
    result = _run(setup["artifact"], "--prompt", PROMPT, "--layers", "0,-1", "--key", "0.5",
                  "--max-new-tokens", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["coefficients"] == {"0": [0.5, 6.0], "1": [0.5, 6.0]}
    assert data["generation"]["max_new_tokens"] == 3


def test_sampling_with_a_seed_is_reproducible(setup):
    args = (setup["artifact"], "--prompt", PROMPT, "--sample", "--temperature", "1.5",
            "--seed", "5", "--format", "json")
    first, second = _run(*args), _run(*args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["generation"]["sample"] is True
    assert first.stdout == second.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--layers", "1-3"], "KVS450"),
        (["--layers", "5"], "KVS451"),
        (["--temperature", "0"], "KVS457"),
        (["--top-p", "1.5"], "KVS457"),
        (["--format", "xml"], "KVS457"),
        (["--max-new-tokens", "0"], "KVS457"),
        (["--batch-size", "0"], "KVS457"),
        (["--file", "/nonexistent/prompts.jsonl"], "KVS453"),
    ],
)
def test_bad_flags_exit_2_with_a_code(setup, args, code):
    prompt = [] if "--file" in args else ["--prompt", PROMPT]
    result = _run(setup["artifact"], *prompt, *args)
    assert result.exit_code == 2, result.output
    assert f"[{code}]" in result.stderr


def test_bad_prompt_line_no_prompt_and_missing_target(setup, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"question": "no prompt"}\n', encoding="utf-8")
    result = _run(setup["artifact"], "--file", bad)
    assert result.exit_code == 2 and "[KVS454]" in result.stderr
    assert f"{bad}:2:1" in result.stderr
    result = _run(setup["artifact"], input="")
    assert result.exit_code == 2 and "[KVS452]" in result.stderr
    result = _run(tmp_path / "missing.kvs", "--prompt", PROMPT)
    assert result.exit_code == 2 and "[KVS455]" in result.stderr
    (tmp_path / "my_style.kvs").write_text("", encoding="utf-8")
    result = _run(tmp_path / "my-style.kvs", "--prompt", PROMPT)
    assert result.exit_code == 2 and f"did you mean `{tmp_path / 'my_style.kvs'}`?" in result.stderr


@pytest.mark.parametrize("given", ["", "   ", "\n\t"])
def test_an_empty_prompt_is_refused_not_generated_from(setup, tmp_path, given):
    """`--prompt "$UNSET"` used to steer a generation from nothing."""
    result = _run(setup["artifact"], "--prompt", given)
    assert result.exit_code == 2 and "[KVS452]" in result.stderr and "is empty" in result.stderr
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "ok"}\n' + json.dumps({"prompt": given}) + "\n", encoding="utf-8")
    result = _run(setup["artifact"], "--file", lines)
    assert result.exit_code == 2 and "[KVS454]" in result.stderr
    assert f"{lines}:2:1" in result.stderr and "empty" in result.stderr


@pytest.mark.parametrize("where", ["stdin", "argument"])
def test_a_prompt_that_is_not_utf8_is_kvs464_before_any_model_is_loaded(tmp_path, where):
    """Not UTF-8 on stdin was UnicodeDecodeError (or, in the C locale, lone surrogates that
    the tokenizer refused with a TypeError); an argument of such bytes, the same."""
    missing = tmp_path / "no-model.kvs"  # loading it would fail with another code
    missing.write_text('style "s" {\n  model = "/nonexistent/model"\n}\n', encoding="utf-8")
    if where == "stdin":
        result = _run(missing, input=b"caf\xe9?\n")
    else:
        result = _run(missing, "--prompt", os.fsdecode(b"caf\xe9?"))
    assert result.exit_code == 2, result.output
    assert "[KVS464]" in result.stderr and "Traceback" not in result.output


def test_foreign_artifact_is_refused_with_a_code_not_a_shape_error(setup):
    result = _run(setup["foreign"], "--prompt", PROMPT)
    assert result.exit_code == 3, result.output
    assert "[KVS404]" in result.stderr
    assert "Traceback" not in result.output


def test_artifact_without_a_plan_is_refused(setup):
    result = _run(setup["no_plan"], "--prompt", PROMPT)
    assert result.exit_code == 1 and "[KVS456]" in result.stderr


def test_score_uses_kvsl_styles_or_says_it_is_unavailable(setup):
    result = _run(setup["artifact"], "--prompt", PROMPT, "--score", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "scoring is unavailable" in result.stderr
    assert "scores" not in json.loads(result.stdout)["results"][0]
    result = _run(setup["builtin"], "--prompt", PROMPT, "--score", "--compare", "--format", "json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["results"][0]["scores"]
    assert set(scores) == {"plain", "steered"}
    assert all(0.0 <= s <= 1.0 for s in scores.values())




def test_a_spec_is_built_first_then_run_and_not_rebuilt(setup, tmp_path):
    from tiny_models import TINY_TRACES

    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    spec = tmp_path / "tiny.kvs"
    spec.write_text(tiny_spec(
            setup["root"] / "llama",
            style="tiny-steps",
            description="a tiny spec on a local model directory",
            max_new_tokens=6,
        ), encoding="utf-8")
    first = _run(spec, "--prompt", PROMPT, "--format", "json")
    assert first.exit_code == 0, first.output
    assert "built" in first.stderr
    artifact = Path(json.loads(first.stdout)["artifact"])
    assert artifact.is_file() and artifact.parent.parent == tmp_path / ".kvsl"
    second = _run(spec, "--prompt", PROMPT, "--format", "json")
    assert second.exit_code == 0, second.output
    assert "up to date" in second.stderr
    assert second.stdout == first.stdout
    # The artifact runs on its own too, with the same result.
    third = _run(artifact, "--prompt", PROMPT, "--format", "json")
    assert json.loads(third.stdout)["results"] == json.loads(first.stdout)["results"]


def test_vectors_with_a_prefix_start_both_columns_with_it(setup, tmp_path):
    """The paper's prefix variant: the artifact records `extract.prefix`, and `kvsl run`
    puts it after the generation prompt in the steered and the plain column alike."""
    import copy

    from kvsl.engine.artifact import load_artifact, save_artifact

    prefix = "Let's think step by step."
    vectors = load_artifact(setup["artifact"])
    manifest = copy.deepcopy({k: v for k, v in vectors.manifest.items() if k != "artifact_path"})
    manifest["position"]["prefix"] = prefix
    manifest["plan"]["extract"]["prefix"] = prefix
    path = save_artifact(
        SteeringVectors(vectors.keys, vectors.values, "\n", manifest, prefix=prefix),
        tmp_path / "prefixed.safetensors",
    )
    result = _run(path, "--prompt", PROMPT, "--compare", "--format", "json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)["results"]
    assert record["steered"] == _expected(setup, PROMPT, vectors_path=path)[0]
    assert record["plain"] == _expected(setup, PROMPT, {1: (0.0, 0.0)}, vectors_path=path)[0]
    text = _run(path, "--prompt", PROMPT, "--max-new-tokens", "2")
    assert text.exit_code == 0 and f"answers start with {prefix!r}" in text.stderr
