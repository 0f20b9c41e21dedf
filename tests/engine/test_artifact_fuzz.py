"""Fuzzing artifacts: a manifest edited anywhere (its checksums recomputed, as a determined
editor or a script would) and files damaged byte by byte.

Every reader of an artifact (`load_artifact`, the recorded plan, coefficients and system
prompt, the model checks, the offset token, `kvsl inspect` in both outputs) answers with
its result or coded diagnostics, never another exception. Tiny Llama only; the embedded
model is never loaded. `KVSL_FUZZ_EXAMPLES=N` runs N examples per property.
test_artifact_tamper.py walks every field of the recorded plan one by one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from artifact_support import built_artifact, signed
from fuzz_settings import fuzz
from hostile_data import assert_coded, json_values, mutated
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.artifact import (
    check_compatible,
    load_artifact,
    plan_of_artifact,
    recorded_coefficients,
    recorded_plan,
    recorded_system_prompt,
    tensors_sha256,
)
from kvsl.engine.prompting import offset_token_id
from kvsl.lang.diagnostics import KvslError


@pytest.fixture(scope="module")
def built(tiny_loaded_llama, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """(manifest, tensors, file bytes) of a real artifact of the tiny Llama."""
    manifest, tensors, path = built_artifact(tiny_loaded_llama, tmp_path_factory.mktemp("fuzz-artifact"), 2)
    return manifest, tensors, path.read_bytes()


def _places(data: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (containers and leaves)."""
    places = [where]
    if isinstance(data, dict):
        for key, value in data.items():
            places += _places(value, (*where, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            places += _places(value, (*where, i))
    return places


@st.composite
def edited(draw: st.DrawFn, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with 1-3 places replaced by any JSON value, removed, or given a key."""
    out = copy.deepcopy(manifest)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(_places(out)[1:]))
        parent = out
        for key in where[:-1]:
            parent = parent[key]
        kind = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if kind == "remove":
            del parent[where[-1]]
        elif kind == "add" and isinstance(parent[where[-1]], dict):
            parent[where[-1]][draw(st.text(max_size=8))] = draw(json_values(4))
        else:
            parent[where[-1]] = draw(json_values(6))
    return out


def _read_everything(path: Path, loaded: Any) -> None:
    """Each reader of an artifact in turn; only coded diagnostics may stop one."""
    try:
        vectors = load_artifact(path)
    except KvslError as err:
        assert_coded(err.diagnostics)
        return
    manifest = vectors.manifest
    recorded_plan(manifest)
    recorded_coefficients(manifest, loaded.geometry.num_layers)
    recorded_system_prompt(manifest)
    for call in (
        lambda: plan_of_artifact(path, instead="kvsl run SPEC.kvs"),
        lambda: check_compatible(vectors, loaded),
        lambda: offset_token_id(loaded.tokenizer, vectors.offset_token),
    ):
        try:
            call()
        except KvslError as err:
            assert_coded(err.diagnostics)
    for args in (["inspect", str(path)], ["inspect", "--json", str(path)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code in (0, 1, 3), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )


@fuzz(30)
@given(data=st.data())
def test_an_edited_manifest_with_fresh_checksums_is_read_or_refused_with_codes(
    built, tiny_loaded_llama, tmp_path_factory, data: st.DataObject
) -> None:
    manifest, tensors, _ = built
    changed = data.draw(edited(manifest))
    changed["tensors_sha256"] = tensors_sha256(tensors)
    path = signed(tmp_path_factory.getbasetemp() / "edited.safetensors", changed, tensors)
    _read_everything(path, tiny_loaded_llama)


@fuzz(20)
@given(data=st.data())
def test_a_damaged_file_is_refused_with_codes(built, tiny_loaded_llama, tmp_path_factory,
                                              data: st.DataObject) -> None:  # fmt: skip
    _, _, raw = built
    header = 8 + int.from_bytes(raw[:8], "little")
    where = data.draw(st.sampled_from(["header", "tensors", "whole"]))
    if where == "header":
        damaged = data.draw(mutated(raw[:header])) + raw[header:]
    elif where == "tensors":
        damaged = raw[:header] + data.draw(mutated(raw[header:]))
    else:
        damaged = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path_factory.getbasetemp() / "damaged.safetensors"
    path.write_bytes(damaged)
    _read_everything(path, tiny_loaded_llama)


# What the fuzzing found, kept as plain cases: each raised an uncoded exception.
FOUND = [
    (("coefficients",), {"1": [6.0]}),  # `kvsl inspect`: not enough values to unpack
    (("coefficients",), {"1": ["six", 0.0]}),  # `kvsl inspect`: format "g" of a string
    (("coefficients",), {"1": [10**400, 0.0]}),  # recorded_coefficients: OverflowError
    (("stats",), ["x"]),  # `kvsl inspect`: a list has no `.get`
    (("style",), "[/x]"),  # `kvsl inspect`: rich read the name as closing markup
    (("model", "revision"), 5),  # `kvsl inspect`: rich cannot render an int
    (("plan", "markers"), None),  # the recorded plan: AttributeError
    (("plan", "steer", "key"), 10**400),  # the recorded plan's check: OverflowError
]


@pytest.mark.parametrize(("where", "value"), FOUND, ids=[str(i) for i in range(len(FOUND))])
def test_what_the_fuzzing_found(built, tiny_loaded_llama, tmp_path, where, value) -> None:
    manifest, tensors, _ = built
    changed = copy.deepcopy(manifest)
    parent = changed
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    path = signed(tmp_path / "found.safetensors", changed, tensors)
    _read_everything(path, tiny_loaded_llama)
    if where[0] == "plan":
        with pytest.raises(KvslError) as err:
            plan_of_artifact(path, instead="kvsl run SPEC.kvs")
        assert err.value.diagnostics[0].code == "KVS456"
    else:
        result = CliRunner().invoke(app, ["inspect", str(path)])
        assert result.exit_code == 0 and "per-layer steering vectors" in result.output
