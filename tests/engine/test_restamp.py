"""`scripts/build_shipped.py --restamp`: after a change of the vector hash's rule alone,
shipped vectors get today's hash without extraction, their tensors written back byte for
byte; vectors extracted from other inputs are refused and left as they are.

Runs on a copy of `specs/` and `templates/` (no model is loaded)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from safetensors import safe_open

from kvsl.base.hashing import file_sha256
from kvsl.engine.artifact import load_artifact, save_artifact
from kvsl.engine.shipped import ShippedEntry, find_shipped, read_index, write_index
from kvsl.engine.vectors import SteeringVectors

ROOT = Path(__file__).resolve().parents[2]
OLD_HASH = "0123456789ab" * 5 + "cdef"  # 64 hex digits, as an earlier rule might give


@pytest.fixture
def script(tmp_path) -> ModuleType:
    """build_shipped.py working on a copy of the built-in specs (with their vectors)."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs", ignore=shutil.ignore_patterns(".kvsl"))
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    found = importlib.util.spec_from_file_location(
        "build_shipped_under_test", ROOT / "scripts" / "build_shipped.py"
    )
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    module.SPECS = tmp_path / "specs"  # type: ignore[attr-defined]
    return module


def _tensor_bytes(path: Path) -> dict[str, bytes]:
    with safe_open(str(path), framework="pt") as handle:
        names = list(handle.keys())  # the handle is not iterable
        return {name: handle.get_tensor(name).numpy().tobytes() for name in names}


def _stamp_with_an_older_hash(path: Path) -> None:
    """The artifact and its index entry as an earlier kvsl left them: same tensors and
    recorded plan, another vector hash."""
    old = load_artifact(path)
    manifest = {k: v for k, v in old.manifest.items() if k != "artifact_path"}
    manifest["vector_hash"] = OLD_HASH
    manifest["plan"] = {**manifest["plan"], "vector_hash": OLD_HASH}
    vectors = SteeringVectors(old.keys, old.values, old.offset_token, manifest, prefix=old.prefix)
    save_artifact(vectors, path)
    entries = read_index(path.parent)
    spec = "step_by_step.kvs"
    entries[spec] = ShippedEntry(
        spec, path.name, file_sha256(path), OLD_HASH, entries[spec].style, entries[spec].model
    )
    write_index(path.parent, entries)


def test_restamp_gives_the_new_hash_and_keeps_the_tensors(script, capsys):
    (plan,) = script._plans(["step-by-step"])
    path = script.SPECS / "vectors" / "step-by-step.safetensors"
    tensors = _tensor_bytes(path)
    _stamp_with_an_older_hash(path)
    assert find_shipped(plan) is None  # stale under today's rule
    assert script.restamp([plan]) == 0
    assert f"re-stamped {OLD_HASH[:12]} → {plan.vector_hash[:12]}" in capsys.readouterr().out
    assert find_shipped(plan) == path  # sha256, checksum and manifest hash all verify
    assert _tensor_bytes(path) == tensors
    manifest = load_artifact(path).manifest
    assert manifest["vector_hash"] == manifest["plan"]["vector_hash"] == plan.vector_hash
    assert script.restamp([plan]) == 0 and "current" in capsys.readouterr().out


def test_restamp_refuses_vectors_of_other_inputs(script, capsys):
    spec = script.SPECS / "step_by_step.kvs"
    spec.write_text(spec.read_text(encoding="utf-8").replace("pairs = 20", "pairs = 19"), "utf-8")
    (plan,) = script._plans(["step-by-step"])
    path = script.SPECS / "vectors" / "step-by-step.safetensors"
    before = file_sha256(path)
    assert script.restamp([plan]) == 1
    assert "step-by-step: extracted from other inputs" in capsys.readouterr().out
    assert file_sha256(path) == before and find_shipped(plan) is None
