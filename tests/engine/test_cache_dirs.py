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
