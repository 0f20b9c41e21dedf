"""`kvsl tune --write` when the spec changes while it is tuned: KVS706, nothing written.

A tune runs for minutes to half an hour; an editor saving the spec meanwhile (or a second
tune writing it) used to have its edit undone, or the values measured on the old spec
written into the new one. Now the spec is left as the user saved it, the reports are
written as usual, and the run exits 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tune_support import DEV, save_tune_model, write_spec
from typer.testing import CliRunner

import kvsl.tune.run as tune_run
from kvsl.cli import app
from kvsl.tune.grid import TuneRequest
from kvsl.tune.run import run_tune

EDIT = "\n# saved by an editor while the tune ran\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tune_model(tmp_path_factory.mktemp("tune-model"))


@pytest.fixture
def spec(tmp_path: Path, model_dir: Path) -> Path:
    return write_spec(tmp_path, model_dir)


@pytest.fixture
def edit_during_search(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tune_run.search

    def search_then_edit(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        with spec.open("a", encoding="utf-8") as f:
            f.write(EDIT)
        return result

    monkeypatch.setattr(tune_run, "search", search_then_edit)


def _request(spec: Path, out: Path) -> TuneRequest:
    return TuneRequest(
        spec=str(spec), dev=str(DEV), values=(2.0,), max_new_tokens=4, start=2, eta=2,
        batch_size=4, out_dir=str(out), device="cpu", write=True,
    )  # fmt: skip


def test_an_edit_during_the_run_is_kept_and_nothing_is_written(
    spec: Path, tmp_path: Path, edit_during_search: None
) -> None:
    before = spec.read_text(encoding="utf-8")
    report = run_tune(_request(spec, tmp_path / "out"))
    assert spec.read_text(encoding="utf-8") == before + EDIT  # the user's text, untouched
    (error,) = [w for w in report["warnings"] if w["severity"] == "error"]
    assert error["code"] == "KVS706" and "not written" in error["message"]
    assert "written" not in report and report["chosen"] is not None
    saved = json.loads(Path(report["report_path"]).read_text(encoding="utf-8"))
    assert saved["chosen"]["setting"] == report["chosen"]["setting"]  # the winner is kept


def test_the_cli_exits_1_with_the_diagnostic(spec: Path, tmp_path: Path, edit_during_search: None) -> None:
    args = ["tune", str(spec), "--dev", str(DEV), "--values", "2", "--max-new-tokens", "4",
            "--start", "2", "--batch-size", "4", "--out", str(tmp_path / "out"), "--write"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "error[KVS706]" in result.stderr and "wrote " not in result.stdout
    assert spec.read_text(encoding="utf-8").endswith(EDIT)


def test_an_unchanged_spec_is_still_written(spec: Path, tmp_path: Path) -> None:
    report = run_tune(_request(spec, tmp_path / "out"))
    assert report["written"] and "# kvsl tune:" in spec.read_text(encoding="utf-8")
    assert not [w for w in report["warnings"] if w["severity"] == "error"]
