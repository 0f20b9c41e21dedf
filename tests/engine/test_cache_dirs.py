"""`KVSL_CACHE_DIR` has one meaning: the root of kvsl's user cache (models/, artifacts/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kvsl.engine.gguf as models
from kvsl.base import locations
from kvsl.base.locations import cache_dir, cache_root, is_packaged
from kvsl.engine.build import user_artifact_dir


def test_the_root_and_its_folders(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert models.model_cache_dir() == tmp_path / "c" / "models"
    assert user_artifact_dir() == tmp_path / "c" / "artifacts"
    monkeypatch.delenv("KVSL_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.model_cache_dir() == tmp_path / "home" / ".cache" / "kvsl" / "models"
    assert cache_dir("artifacts") == tmp_path / "home" / ".cache" / "kvsl" / "artifacts"


def _converted(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / models._IDENTITY_FILE).write_text(json.dumps({}), encoding="utf-8")
    return folder


@pytest.mark.parametrize("where", ["nowhere", "legacy", "new", "both"])
def test_a_conversion_in_the_old_place_is_reused(tmp_path, monkeypatch, where) -> None:
    # Before, KVSL_CACHE_DIR was the models folder itself: $KVSL_CACHE_DIR/<name>-<hash>/.
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path))
    name = "smollm2-135m-0123456789ab"
    if where in ("legacy", "both"):
        _converted(tmp_path / name)
    if where in ("new", "both"):
        _converted(tmp_path / "models" / name)
    expected = tmp_path / name if where == "legacy" else tmp_path / "models" / name
    assert models._cache_entry(name) == expected


def test_package_data_is_known_by_its_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(locations, "PACKAGED_DIR", tmp_path / "_builtin")
    assert is_packaged(tmp_path / "_builtin" / "specs" / "a.kvs")
    assert not is_packaged(tmp_path / "specs" / "a.kvs")


@pytest.mark.parametrize("root", ["a-file", "under-a-file", "proc"])
def test_an_unwritable_cache_costs_the_cache_not_the_run(tmp_path, root) -> None:
    """KVSL_CACHE_DIR naming a file (or a folder nobody may create) used to end the run
    with a traceback from mkdir; now the converted model is used uncached, and said so."""
    from tiny_models import make_tiny_model

    model, tokenizer = make_tiny_model("llama")
    (tmp_path / "a-file").write_text("not a folder")
    parent = {
        "a-file": tmp_path / "a-file",
        "under-a-file": tmp_path / "a-file" / "deeper",
        "proc": Path("/proc/1/kvsl-models"),
    }[root]
    notes: list[str] = []
    cached = models._write_cache_entry(parent / "entry", model, tokenizer, {}, notes)
    assert cached is False
    assert any("could not cache the converted model" in n for n in notes), notes
    assert (tmp_path / "a-file").read_text() == "not a folder"  # nothing lost


def test_a_writable_cache_is_written(tmp_path) -> None:
    from tiny_models import make_tiny_model

    model, tokenizer = make_tiny_model("llama")
    notes: list[str] = []
    assert models._write_cache_entry(tmp_path / "m" / "entry", model, tokenizer, {}, notes)
    assert (tmp_path / "m" / "entry" / models._IDENTITY_FILE).is_file() and notes == []


def test_an_unwritable_cache_for_the_offload_folder_is_kvs302(tmp_path, monkeypatch) -> None:
    from kvsl.engine.placement import placement_kwargs
    from kvsl.lang.diagnostics import ExitCode, KvslError

    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "a-file"))
    with pytest.raises(KvslError) as err:
        placement_kwargs("auto")
    assert err.value.diagnostics[0].code == "KVS302"
    assert "offload folder" in err.value.diagnostics[0].message
    assert err.value.exit_code == ExitCode.ENVIRONMENT
