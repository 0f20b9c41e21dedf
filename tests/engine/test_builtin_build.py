"""Where artifacts go when the spec's folder must not be written: built-in specs installed
as package data, and read-only folders (`kvsl.engine.build.artifact_dir_for`)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, make_plan, tiny_spec
from typer.testing import CliRunner

import kvsl.builtin as builtin
import kvsl.engine.build as build_module
from kvsl.base import locations
from kvsl.cli import app
from kvsl.engine.build import artifact_dir_for, artifact_path_for, user_artifact_dir


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("KVSL_CACHE_DIR", str(folder))
    return folder


def test_user_artifact_dir_follows_kvsl_cache_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "c"))
    assert user_artifact_dir() == tmp_path / "c" / "artifacts"
    monkeypatch.delenv("KVSL_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_artifact_dir() == tmp_path / "home" / ".cache" / "kvsl" / "artifacts"


def test_a_writable_spec_folder_keeps_its_artifacts_beside_it(tiny_traces, cache) -> None:
    plan = make_plan(tiny_traces)
    assert artifact_path_for(plan).parent == tiny_traces.parent / ".kvsl" / "artifacts"


def test_a_read_only_spec_folder_builds_into_the_user_cache(tmp_path, cache, monkeypatch) -> None:
    # A temp copy of the built-in specs, made read-only as a system-wide install would be.
    specs = tmp_path / "readonly" / "specs"
    shutil.copytree(builtin.builtin_specs_dir(), specs)
    spec = specs / "step_by_step.kvs"
    mode = specs.stat().st_mode
    specs.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with monkeypatch.context() as patch:
            if os.geteuid() == 0:
                # chmod does not stop root from writing: deny writes under the copy the
                # way a non-root user sees them.
                real_access = os.access

                def access(path, mode, **kwargs):
                    if mode & os.W_OK and Path(path).resolve().is_relative_to(specs):
                        return False
                    return real_access(path, mode, **kwargs)

                patch.setattr(build_module.os, "access", access)
            assert artifact_dir_for(spec) == cache / "artifacts"
    finally:
        specs.chmod(mode)
    assert artifact_dir_for(spec) == specs / ".kvsl" / "artifacts"  # writable again


def test_packaged_builtin_spec_never_writes_into_the_package(
    tmp_path, cache, monkeypatch, tiny_model_dir
) -> None:
    # A fake installed package: kvsl/_builtin/specs holds a tiny "step-by-step" spec.
    packaged = tmp_path / "site-packages" / "kvsl" / "_builtin"
    specs = packaged / "specs"
    (specs / "traces").mkdir(parents=True)
    (specs / "traces" / "step_by_step.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    (specs / "step_by_step.kvs").write_text(
        tiny_spec(
            tiny_model_dir,
            style="step-by-step",
            description="a tiny stand-in for the built-in spec",
            traces="traces/step_by_step.jsonl",
            pairs=3,
            value=4,
        ), encoding="utf-8"
    )
    monkeypatch.setattr(locations, "PACKAGED_DIR", packaged)
    monkeypatch.chdir(tmp_path)

    # The folder is writable, but it is package data: the user cache gets the artifact.
    assert artifact_dir_for(specs / "step_by_step.kvs") == cache / "artifacts"
    result = CliRunner().invoke(app, ["build", "step-by-step", "--quiet"])
    assert result.exit_code == 0, result.output
    artifact = Path(result.stdout.strip().splitlines()[-1])
    assert artifact.parent == cache / "artifacts" and artifact.is_file()
    assert artifact.name.startswith("step-by-step-")
    assert not (specs / ".kvsl").exists()
    # Built once: the name finds the same artifact again.
    again = CliRunner().invoke(app, ["build", "step-by-step", "--quiet"])
    assert again.exit_code == 0 and "up to date" in again.output
