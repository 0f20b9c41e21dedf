"""A spec in a folder whose name is not UTF-8: every command works on it.

Python holds such a name as surrogate escapes (`os.fsdecode(b"sp\\xfec")` is
`"sp\\udcfec"`). The spec's paths then reached a strict UTF-8 encode in the plan hash, the
artifact manifest, the reports and the results cache (UnicodeEncodeError from `kvsl build`,
`run`, `eval` and `tune`), and safetensors' `safe_open` refused the artifact's path, which
read as "corrupt or truncated" with the advice to delete it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tune_support import DEV, save_tune_model, write_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.artifact import load_artifact


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tune_model(tmp_path_factory.mktemp("tune-model"))  # transformers needs UTF-8 here


def _kvsl(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, list(args))
    assert not (result.exception and not isinstance(result.exception, SystemExit)), repr(result.exception)
    assert result.exit_code == 0, result.output
    return result


def test_build_run_eval_and_tune_in_a_folder_named_with_other_bytes(model_dir: Path, tmp_path: Path) -> None:
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/sp\xfec"))
    spec = write_spec(folder, model_dir)
    built = _kvsl("build", str(spec))
    artifact = next((folder / ".kvsl" / "artifacts").glob("*.safetensors"))
    assert artifact.name in built.output and r"sp\udcfec" in built.output  # printed escaped
    assert load_artifact(artifact).manifest["spec_path"] == str(spec)  # the name kept exactly

    ran = _kvsl("run", str(spec), "-p", "hi", "--max-new-tokens", "3", "--format", "json")
    report = json.loads(ran.stdout)
    assert report["results"][0]["prompt"] == "hi" and report["artifact"] == str(artifact)
    out = Path(os.fsdecode(os.fsencode(tmp_path) + b"/ev\xfdal"))
    _kvsl("eval", str(spec), "--data", str(DEV), "-m", "plain,cache", "--max-new-tokens", "3", "--out", str(out))
    assert any(out.glob("*.json"))
    tuned = _kvsl("tune", str(spec), "--dev", str(DEV), "--values", "2", "--max-new-tokens", "3",
                  "--start", "2", "--out", str(tmp_path / "tune"), "--write")  # fmt: skip
    assert "# kvsl tune:" in spec.read_text(encoding="utf-8") and "wrote " in tuned.stdout
