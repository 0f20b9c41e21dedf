"""Shipped vectors (`kvsl.engine.shipped`): a spec folder's `vectors/` is used only when it
verifies and matches the plan; stale or tampered files are reported and never used.

The tiny-model tests build a spec folder that ships vectors the way `specs/` does; the
embedded test rebuilds a built-in style with `--force` and compares with what ships.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from tiny_models import TINY_TRACES, tiny_spec
from typer.testing import CliRunner

import kvsl.engine.models as models
from kvsl.base.hashing import file_sha256
from kvsl.cli import app
from kvsl.engine.artifact import load_artifact, save_artifact
from kvsl.engine.build import build
from kvsl.engine.extract import extract_vectors, layer_cosines
from kvsl.engine.shipped import (
    ShippedEntry,
    find_shipped,
    read_index,
    shipped_dir,
    write_index,
)
from kvsl.lang import load_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shipping_spec(tmp_path, tiny_model_dir, tiny_loaded_llama) -> Path:
    """A spec whose folder ships its vectors: vectors/tiny.safetensors + index.json."""
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    spec = tmp_path / "tiny.kvs"
    spec.write_text(tiny_spec(tiny_model_dir, pairs=3), encoding="utf-8")
    plan = load_plan(spec)
    folder = shipped_dir(spec)
    path = save_artifact(
        extract_vectors(tiny_loaded_llama, plan, progress=False), folder / "tiny.safetensors"
    )
    write_index(
        folder,
        {"tiny.kvs": ShippedEntry("tiny.kvs", path.name, file_sha256(path), plan.vector_hash)},
    )
    return spec


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=300), out


def _no_model_loading(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded: shipped vectors were not used")

    monkeypatch.setattr(models, "load_model", refuse)


def test_index_round_trips(tmp_path):
    entry = ShippedEntry("a.kvs", "a.safetensors", "ab" * 32, "cd" * 32, "a", "m")
    write_index(tmp_path, {"a.kvs": entry})
    assert read_index(tmp_path) == {"a.kvs": entry}
    (tmp_path / "index.json").write_text("{not json", encoding="utf-8")
    assert read_index(tmp_path) == {}


def test_a_spec_with_shipped_vectors_builds_nothing(shipping_spec, monkeypatch):
    _no_model_loading(monkeypatch)
    console, out = _console()
    result = build(load_plan(shipping_spec), console=console, progress=False)
    assert not result.built
    assert result.path == shipping_spec.parent / "vectors" / "tiny.safetensors"
    assert "ships with prebuilt vectors" in out.getvalue() and "nothing to build" in out.getvalue()
    assert not (shipping_spec.parent / ".kvsl").exists()


def test_kvsl_build_cli_says_the_shipped_vectors_are_used(shipping_spec, monkeypatch):
    _no_model_loading(monkeypatch)
    result = CliRunner().invoke(app, ["build", str(shipping_spec)])
    assert result.exit_code == 0, result.output
    assert "ships with prebuilt vectors" in result.output
    assert "vectors/tiny.safetensors" in result.output
    # One line however long (off a terminal rich would wrap it at 80 columns mid-path).
    (line,) = [line for line in result.output.splitlines() if "ships with prebuilt" in line]
    assert "nothing to build" in line and "`--force` rebuilds)" in line and len(line) > 80


def test_a_tampered_shipped_file_is_kvs311_and_extracted_instead(
    shipping_spec, tiny_loaded_llama
):
    shipped = shipping_spec.parent / "vectors" / "tiny.safetensors"
    shipped.write_bytes(shipped.read_bytes() + b" ")
    seen = []
    assert find_shipped(load_plan(shipping_spec), on_warning=seen.append) is None
    assert [d.code for d in seen] == ["KVS311"] and "sha256" in seen[0].message
    console, out = _console()
    result = build(
        load_plan(shipping_spec), loaded=tiny_loaded_llama, console=console, progress=False
    )
    assert result.built and ".kvsl" in str(result.path)
    assert "KVS311" in out.getvalue()


def test_stale_shipped_vectors_are_kvs310_and_never_used(shipping_spec, tiny_loaded_llama):
    spec_text = shipping_spec.read_text(encoding="utf-8").replace("pairs = 3", "pairs = 4")
    shipping_spec.write_text(spec_text, encoding="utf-8")
    console, out = _console()
    result = build(
        load_plan(shipping_spec), loaded=tiny_loaded_llama, console=console, progress=False
    )
    assert result.built and result.path.parent.name == "artifacts"
    assert "KVS310" in out.getvalue()
    assert load_artifact(result.path).manifest["pairs"] == 4


def test_shipped_vectors_that_do_not_fit_the_loaded_model_are_kvs312(
    shipping_spec, tiny_loaded_qwen2
):
    # Same geometry, another fingerprint (as another transformers version's config can be).
    console, out = _console()
    result = build(
        load_plan(shipping_spec), loaded=tiny_loaded_qwen2, console=console, progress=False
    )
    assert result.built and result.path.parent.name == "artifacts"
    assert "KVS312" in out.getvalue()


def test_force_rebuilds_and_reproduces_the_shipped_vectors(shipping_spec, tiny_loaded_llama):
    console, _ = _console()
    plan = load_plan(shipping_spec)
    result = build(plan, force=True, loaded=tiny_loaded_llama, console=console, progress=False)
    assert result.built and result.path.parent.name == "artifacts"
    shipped = load_artifact(shipping_spec.parent / "vectors" / "tiny.safetensors")
    rebuilt = load_artifact(result.path)
    assert all(v >= 0.9999 for pair in layer_cosines(shipped, rebuilt).values() for v in pair)


def test_vectors_elsewhere_with_the_same_inputs_are_found_by_content(
    shipping_spec, tmp_path, monkeypatch
):
    # A copy of the folder (spec, traces, vectors) elsewhere: same vector hash, same file.
    copy = tmp_path / "copy"
    shutil.copytree(shipping_spec.parent, copy, ignore=shutil.ignore_patterns("copy"))
    _no_model_loading(monkeypatch)
    assert find_shipped(load_plan(copy / "tiny.kvs")) == copy / "vectors" / "tiny.safetensors"


# --- the built-in styles' shipped vectors --------------------------------------------


def test_every_builtin_style_ships_current_verified_vectors():
    """The shipped artifacts match today's built-in specs (run scripts/build_shipped.py
    after editing a spec, its traces or its template) and pass verification."""
    from kvsl.builtin import builtin_styles

    for style in builtin_styles():
        plan = load_plan(style.spec_path)
        seen = []
        path = find_shipped(plan, on_warning=seen.append)
        assert path is not None, (style.name, [d.message for d in seen])
        assert path.stat().st_size < 200_000  # small: ~50 KB each
        manifest = dict(load_artifact(path).manifest)
        manifest.pop("artifact_path")  # added in memory by load_artifact
        assert manifest["model"]["name"] == "smollm2-135m"  # type: ignore[index]
        assert str(ROOT) not in json.dumps(manifest)  # no local path ships


@pytest.mark.embedded
def test_force_rebuild_of_a_builtin_style_reproduces_the_shipped_vectors(tmp_path, monkeypatch):
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "cache"))
    from kvsl.builtin import builtin_spec

    plan = load_plan(builtin_spec("step-by-step"))
    shipped = find_shipped(plan)
    assert shipped is not None
    console, _ = _console()
    result = build(plan, force=True, console=console, progress=False, out_dir=tmp_path / "out")
    assert result.built
    cosines = layer_cosines(load_artifact(shipped), load_artifact(result.path))
    # Layer 0 values are exactly zero in both (cosine 1.0 by definition).
    assert min(v for pair in cosines.values() for v in pair) >= 0.9999, cosines
