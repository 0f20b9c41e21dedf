"""`kvsl eval` through Typer's CliRunner, on a tiny model saved to a directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES as SHARED_TRACES
from typer.testing import CliRunner

from kvsl.cli import app

runner = CliRunner()

FIXTURES = Path(__file__).parent / "fixtures"
TINY_TRACES = SHARED_TRACES[:6]  # as in conftest.py



@pytest.fixture
def spec(tmp_path: Path, model_dir: Path) -> Path:
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    path = tmp_path / "tiny.kvs"
    path.write_text(
        'style "step-by-step" {\n'
        '  description = "tiny"\n'
        f'  model = "{model_dir}"\n'
        '  contrast {\n    traces = "traces.jsonl"\n    pairs = 3\n    shots = 1\n  }\n'
        "  steer {\n    layers = [1..]\n    value = 4\n  }\n"
        "}\n",
        encoding="utf-8",
    )
    return path


def _invoke(*args: str):
    return runner.invoke(app, ["eval", *args], catch_exceptions=False)


def test_plain_and_cot_on_a_model_then_resume(model_dir: Path, tmp_path: Path) -> None:
    args = [
        "--model",
        str(model_dir),
        "--benchmark",
        "arc",
        "--data",
        str(FIXTURES / "arc.jsonl"),
        "--methods",
        "plain,cot",
        "--max-new-tokens",
        "4",
        "--limit",
        "3",
        "--out",
        str(tmp_path),
    ]
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    assert (
        "plain" in first.stdout
        and "cot" in first.stdout
        and "generated 6 responses" in first.stdout
    )
    second = _invoke(*args, "--format", "json")
    assert second.exit_code == 0
    report = json.loads(second.stdout)
    assert report["generated_now"] == 0
    assert [m["method"] for m in report["methods"]] == ["plain", "cot"]
    assert report["benchmark"]["examples"] == 3 and report["benchmark"]["limit"] == 3
    assert report["request"]["decode"]["max_new_tokens"] == 4
    assert report["model"]["config_sha256"]
    assert Path(report["report_path"]).exists()


def test_spec_with_cache_and_caa(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (
        str(spec),
        "--data",
        str(FIXTURES / "gsm8k.jsonl"),
        "--dev",
        str(FIXTURES / "gsm8k.jsonl"),
        "--methods",
        "plain,cache,cache+cot,caa",
        "--max-new-tokens",
        "4",
        "--batch-size",
        "2",
        "--caa-layers",
        "1,2",
        "--caa-multipliers",
        "0,1",
        "--export-caa",
        str(tmp_path / "caa.gguf"),
        "--out",
        str(out),
        "--format",
        "json",
    )
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [m["method"] for m in report["methods"]] == ["plain", "cache", "cache+cot", "caa"]
    assert report["coefficients"] == {"1": [0.0, 4.0], "2": [0.0, 4.0]}
    assert report["caa"]["layer"] in (1, 2) and len(report["caa"]["grid"]) == 4
    assert report["methods"][1]["versus_plain"] is not None
    assert report["methods"][0]["style"] is not None  # built-in step-by-step scorer
    assert (tmp_path / "caa.gguf").exists()
    [cache] = list((out / "caa").glob("*.safetensors"))

    # A damaged CAA cache (cut short, or another model's) is extracted again and replaced,
    # not read (safetensors' traceback) nor trusted: the rerun reports the same.
    whole = cache.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"\x00" * 64, _other_model_cache()):
        cache.write_bytes(damaged)
        again = _invoke(*args)
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["caa"] == report["caa"]
        assert cache.read_bytes() == whole


def _other_model_cache() -> bytes:
    import torch
    from safetensors.torch import save

    return save({"direction.1": torch.ones(7), "direction.2": torch.ones(7)})


def test_sweep_writes_a_plot(spec: Path, tmp_path: Path) -> None:
    result = _invoke(
        str(spec),
        "--dev",
        str(FIXTURES / "arc.jsonl"),
        "--dev-limit",
        "2",
        "--sweep",
        "value=0,4",
        "--sweep",
        "layers=1,2",
        "--max-new-tokens",
        "3",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "best on dev" in result.stdout
    pngs = list(tmp_path.glob("sweep-*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"
    report = json.loads(next(tmp_path.glob("sweep-*.json")).read_text())
    assert set(report["sweeps"]) == {"value", "layers"}


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["--methods", "plain,steer"], "KVS610", 2),
        (["--methods", "plain,cache"], "KVS611", 2),
        (["--runs", "0"], "KVS612", 2),
        (["--threads", "0"], "KVS313", 2),  # the shared --threads option (kvsl.engine.threads)
        (["--sweep", "colour=1,2"], "KVS612", 2),
        (["--benchmark", "mmlu"], "KVS601", 2),
        (["--forced-choice", "letters"], "KVS612", 2),
    ],
)
def test_usage_errors(model_dir: Path, args: list[str], code: str, exit_code: int) -> None:
    result = runner.invoke(
        app, ["eval", "--model", str(model_dir), "--data", str(FIXTURES / "arc.jsonl"), *args]
    )
    assert result.exit_code == exit_code, result.output
    assert code in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("sweep", [False, True])
def test_out_that_is_a_file_is_kvs612_before_any_work(model_dir: Path, tmp_path: Path, sweep: bool) -> None:
    """`--out notes.md` used to end an eval in a mkdir traceback after all its answers."""
    (tmp_path / "notes.md").write_text("keep me", encoding="utf-8")
    split = ["--dev", str(FIXTURES / "arc.jsonl"), "--sweep", "value=1,2"] if sweep else [
        "--data", str(FIXTURES / "arc.jsonl")]
    result = runner.invoke(app, ["eval", "--model", str(model_dir), *split, "--methods", "plain",
                                 "--out", str(tmp_path / "notes.md")])
    assert result.exit_code == 2, result.output
    assert "KVS612" in result.output and "is a file, not a folder" in result.output
    assert (tmp_path / "notes.md").read_text(encoding="utf-8") == "keep me"


def test_forced_choice_modes_decide_the_same_responses_again(model_dir: Path, tmp_path: Path) -> None:
    """`--forced-choice calibrated` after `model` generates nothing: the model's label scores
    are kept with each unreadable response; every answer stays a valid label."""
    args = ["--model", str(model_dir), "--benchmark", "arc", "--data", str(FIXTURES / "arc.jsonl"),
            "--methods", "plain", "--max-new-tokens", "3", "--out", str(tmp_path),
            "--format", "json"]  # fmt: skip
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    for mode in ("calibrated", "overlap", "model"):
        again = _invoke(*args, "--forced-choice", mode)
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["generated_now"] == 0
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    scored = [r for r in records if r["forced_scores"]]
    assert scored and all(r["forced_model"] in r["forced_scores"] for r in scored)


def test_bad_benchmark_file(model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{oops\n')
    result = runner.invoke(
        app, ["eval", "--model", str(model_dir), "--data", str(bad), "--methods", "plain"]
    )
    assert result.exit_code == 1
    assert "KVS602" in result.output and f"{bad}:2" in result.output


def test_caa_without_dev_or_fixed_settings(spec: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "eval",
            str(spec),
            "--data",
            str(FIXTURES / "gsm8k.jsonl"),
            "--methods",
            "caa",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "KVS616" in result.output
