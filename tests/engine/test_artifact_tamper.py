"""An artifact edited *with its checksum recomputed*: every part a load or a run reads.

The manifest checksum proves only that the text did not change after it was computed; a
user (or a script) that edits the manifest and writes a new checksum gets past it. Such a
file used to fail with an AttributeError, a ValueError or a TypeError deep in generation,
or to steer silently with a NaN coefficient. Now each part is checked on load: the
manifest's layers, geometry, position and model identity (KVS402), and every field of the
recorded plan against its declared type and range (KVS456, `kvsl.lang.typed`).

The class is covered by walking the whole recorded plan: each field in turn gets a value
of a wrong type, and each number NaN.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from artifact_support import built_artifact, signed
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.artifact import (
    load_artifact,
    plan_of_artifact,
    recorded_coefficients,
    tensors_sha256,
)
from kvsl.lang.diagnostics import KvslError


@pytest.fixture(scope="module")
def built(tiny_loaded_llama, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, tensors) of a real artifact of the tiny Llama."""
    manifest, tensors, _ = built_artifact(tiny_loaded_llama, tmp_path_factory.mktemp("tamper"), 3)
    return manifest, tensors


def _resigned(path: Path, manifest: dict[str, Any], tensors: dict[str, Any]) -> Path:
    """The artifact with `manifest`, its checksums recomputed as a determined editor would."""
    return signed(path, {**manifest, "tensors_sha256": tensors_sha256(tensors)}, tensors)


def _edited(manifest: dict[str, Any], where: tuple[str, ...], value: Any) -> dict[str, Any]:
    edited = copy.deepcopy(manifest)
    parent = edited
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    return edited


def _plan_leaves(data: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) of the recorded plan's leaves (lists of objects walked into)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _plan_leaves(value, (*where, key))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            yield from _plan_leaves(value, (*where, i))
    else:
        yield where, data


def _wrong_values(value: Any) -> list[Any]:
    """Values of another type than `value`'s (for a number: NaN and text too)."""
    if isinstance(value, bool):
        return ["yes", 1]
    if isinstance(value, int | float):
        return ["six", float("nan")] + ([1.5] if isinstance(value, int) else [])
    if isinstance(value, str):
        return [5, ["text"]]
    if isinstance(value, list):
        return [[5], "text"]
    return [["text"], {"x": 1}]  # None: an optional field (str | None, int | None, ...)


def test_every_field_of_the_recorded_plan_is_checked(built, tmp_path) -> None:
    manifest, tensors = built
    leaves = list(_plan_leaves(manifest["plan"]))
    assert len(leaves) > 40  # the walk reaches the whole plan
    plan_of_artifact(_resigned(tmp_path / "ok.safetensors", manifest, tensors), instead="x")
    passed = []
    for where, value in leaves:
        if where[-1] in ("vector_hash", "plan_hash", "traces_sha256", "questions_sha256"):
            continue  # hashes: any text is a (stale) hash, and a number is refused below
        for wrong in _wrong_values(value):
            edited = _edited(manifest, ("plan", *where), wrong)
            path = _resigned(tmp_path / "a.safetensors", edited, tensors)
            load_artifact(path)  # the vectors themselves are intact
            try:
                plan_of_artifact(path, instead="kvsl run SPEC.kvs")
            except KvslError as err:
                assert err.diagnostics[0].code == "KVS456", (where, wrong)
                assert "records a plan that cannot be read" in err.diagnostics[0].message
            else:
                passed.append((where, wrong))
    assert passed == [], passed


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("layers",), ["x", "y"]),
        (("layers",), [0, True]),
        (("geometry",), [2, 16]),
        (("geometry", "kv_heads"), "2"),
        (("position",), ["\n"]),
        (("position", "offset_token"), 5),
        (("position", "prefix"), 7),
        (("model",), ["tiny-llama"]),  # would skip the model identity check
    ],
)
def test_manifest_parts_a_load_reads_are_checked(built, tmp_path, where, value) -> None:
    manifest, tensors = built
    path = _resigned(tmp_path / "a.safetensors", _edited(manifest, where, value), tensors)
    with pytest.raises(KvslError) as err:
        load_artifact(path)
    assert err.value.diagnostics[0].code == "KVS402"
    assert "is corrupt" in err.value.diagnostics[0].message


@pytest.mark.parametrize(
    ("where", "value"),
    [(("position", "prefix"), "\udcff"), (("plan", "contrast", "system_prompt"), "a \ud800 b")],
)
def test_text_a_model_reads_must_be_unicode_even_when_paths_need_not_be(
    built, tmp_path, where, value
) -> None:
    """A lone surrogate is allowed in a path (a folder named with bytes that are not UTF-8)
    but not in text that reaches the tokenizer, where it is a TypeError."""
    manifest, tensors = built
    path = _resigned(tmp_path / "a.safetensors", _edited(manifest, where, value), tensors)
    with pytest.raises(KvslError) as err:
        load_artifact(path)
    assert err.value.diagnostics[0].code == "KVS402"
    assert "a string with a lone surrogate (not Unicode text)" in err.value.diagnostics[0].message
    fine = _resigned(tmp_path / "b.safetensors", _edited(manifest, ("spec_path",), "d\udcff/x.kvs"), tensors)
    assert load_artifact(fine).manifest["spec_path"] == "d\udcff/x.kvs"


@pytest.mark.parametrize("entry", [{"1": [0.0, float("nan")]}, {"x": "y"}, {"1": 6.0}])
def test_unreadable_recorded_coefficients_fall_back_to_the_plans(built, entry) -> None:
    manifest, _ = built
    expected = recorded_coefficients(manifest, 2)
    assert expected and recorded_coefficients({**manifest, "coefficients": entry}, 2) == expected


def test_kvsl_run_on_a_tampered_artifact_is_a_coded_error_not_a_traceback(built, tmp_path) -> None:
    manifest, tensors = built
    edited = _edited(manifest, ("plan", "steer", "value"), float("nan"))
    path = _resigned(tmp_path / "a.safetensors", edited, tensors)
    result = CliRunner().invoke(app, ["run", str(path), "-p", "hi", "--threads", "1",
                                      "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "[KVS456]" in result.stderr and "`steer.value` is nan" in result.stderr
    assert "Traceback" not in result.output
