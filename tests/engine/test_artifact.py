"""Artifacts: round trip, manifest, tamper and truncation detection, foreign models."""

from __future__ import annotations

import json
import os

import pytest
import torch
from tiny_models import make_plan

from kvsl.engine.artifact import (
    CHECKSUM_KEY,
    FORMAT_VERSION,
    MANIFEST_KEY,
    check_compatible,
    load_artifact,
    read_manifest,
    save_artifact,
)
from kvsl.engine.extract import extract_vectors
from kvsl.engine.vectors import SteeringVectors
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import Plan


@pytest.fixture(scope="module")
def vectors(tiny_loaded_llama, tmp_path_factory):
    from tiny_models import TINY_TRACES

    folder = tmp_path_factory.mktemp("traces")
    traces = folder / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    return extract_vectors(tiny_loaded_llama, make_plan(traces, pairs=3), progress=False)


def code_of(call) -> str:
    with pytest.raises(KvslError) as caught:
        call()
    return caught.value.diagnostics[0].code


def test_round_trip(vectors, tmp_path):
    path = save_artifact(vectors, tmp_path / "a.safetensors")
    loaded = load_artifact(path)
    assert sorted(loaded.keys) == sorted(vectors.keys)
    for layer in vectors.keys:
        assert torch.equal(loaded.keys[layer], vectors.keys[layer])
        assert torch.equal(loaded.values[layer], vectors.values[layer])
    assert loaded.offset_token == "\n"
    manifest = loaded.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    for key in ("kvsl_version", "created", "model", "geometry", "position", "layers", "pairs",
                "shots", "vector_hash", "plan_hash", "steer", "coefficients", "precision", "plan"):
        assert key in manifest, key
    assert Plan.from_dict(manifest["plan"]).vector_hash == vectors.manifest["vector_hash"]
    assert read_manifest(path)["vector_hash"] == vectors.manifest["vector_hash"]
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_tensor_layout(vectors, tmp_path):
    from safetensors import safe_open

    path = save_artifact(vectors, tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert sorted(handle.keys()) == ["keys.0", "keys.1", "values.0", "values.1"]
        assert handle.get_tensor("keys.1").dtype == torch.float32
        assert json.loads(handle.metadata()[MANIFEST_KEY])["geometry"]["kv_heads"] == 2


def test_missing_file_is_kvs400(tmp_path):
    assert code_of(lambda: load_artifact(tmp_path / "nope.safetensors")) == "KVS400"


def test_a_directory_or_a_fifo_is_kvs400_named_as_such(tmp_path):
    """Not "does not exist" for a path that does: say what it is instead."""
    with pytest.raises(KvslError) as folder:
        load_artifact(tmp_path)
    assert folder.value.diagnostics[0].code == "KVS400"
    assert "is a directory" in folder.value.diagnostics[0].message
    os.mkfifo(tmp_path / "pipe.safetensors")
    with pytest.raises(KvslError) as fifo:
        load_artifact(tmp_path / "pipe.safetensors")
    assert "is not a regular file" in fifo.value.diagnostics[0].message


def test_foreign_safetensors_is_kvs401(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2, 2)}, tmp_path / "model.safetensors")
    assert code_of(lambda: load_artifact(tmp_path / "model.safetensors")) == "KVS401"


@pytest.mark.parametrize("name", ["x.safetensors", "README.md", "index.json"])
def test_not_safetensors_is_kvs401_and_never_advises_deleting_it(tmp_path, name):
    """A text file passed by mistake is not "corrupt": the corrupt-artifact advice (delete
    it and rebuild) would cost the user that file."""
    (tmp_path / name).write_text('{"hello": "not a tensor file"}\n# notes\n')
    with pytest.raises(KvslError) as err:
        load_artifact(tmp_path / name)
    diagnostic = err.value.diagnostics[0]
    assert diagnostic.code == "KVS401"
    assert "not a safetensors file" in diagnostic.message
    assert "delete" not in (diagnostic.help or "")


def test_truncated_is_kvs402(vectors, tmp_path):
    path = save_artifact(vectors, tmp_path / "a.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    assert code_of(lambda: load_artifact(path)) == "KVS402"


def test_tampered_tensor_is_kvs402(vectors, tmp_path):
    path = save_artifact(vectors, tmp_path / "a.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # flip a bit in the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(KvslError) as caught:
        load_artifact(path)
    assert caught.value.diagnostics[0].code == "KVS402"
    assert "checksum" in caught.value.diagnostics[0].message


def test_missing_layer_is_kvs402(vectors, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_artifact(vectors, tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys() if k != "values.1"}  # noqa: SIM118 (not a dict)
    save_file(tensors, path, metadata=metadata)
    assert code_of(lambda: load_artifact(path)) == "KVS402"


def test_newer_format_is_kvs403(vectors, tmp_path):
    future = SteeringVectors(
        vectors.keys, vectors.values, "\n", {**vectors.manifest, "format_version": FORMAT_VERSION + 1}
    )
    path = save_artifact(future, tmp_path / "a.safetensors")
    assert code_of(lambda: load_artifact(path)) == "KVS403"


def test_compatible_with_its_own_model(vectors, tiny_loaded_llama, tmp_path):
    check_compatible(load_artifact(save_artifact(vectors, tmp_path / "a.safetensors")), tiny_loaded_llama)


def test_other_architecture_is_refused(vectors, tiny_loaded_qwen2):
    # same geometry (2 layers, 2 KV heads × 16), different model: refused by identity
    assert code_of(lambda: check_compatible(vectors, tiny_loaded_qwen2)) == "KVS404"


def test_other_geometry_is_refused_not_a_shape_error(vectors, tiny_llama):
    from tiny_models import byte_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    from kvsl.engine.models import loaded_from_objects
    from kvsl.lang.plan import ModelRef

    tokenizer = byte_tokenizer()
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4,
    ))
    other = loaded_from_objects(model, tokenizer, ModelRef("three", "directory", "/three"))
    with pytest.raises(KvslError) as caught:
        check_compatible(vectors, other)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS404"
    assert "2 layers" in diagnostic.message and "3 layers" in diagnostic.message


def test_other_tokenizer_or_template_is_kvs405(vectors, tiny_llama):
    import copy

    from kvsl.engine.models import loaded_from_objects
    from kvsl.lang.plan import ModelRef

    model, tokenizer = tiny_llama
    other = copy.deepcopy(tokenizer)
    other.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    loaded = loaded_from_objects(model, other, ModelRef("tiny-llama", "directory", "/t"))
    assert code_of(lambda: check_compatible(vectors, loaded)) == "KVS405"


def test_interrupted_save_leaves_nothing(vectors, tmp_path, monkeypatch):
    import safetensors.torch

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        save_artifact(vectors, tmp_path / "a.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_an_edited_coefficient_in_the_manifest_is_refused(vectors, tmp_path):
    # The manifest holds the coefficients a run uses; a same-length edit in the header
    # (c_v 6 → 9) must not pass as the spec's vectors.
    path = save_artifact(vectors, tmp_path / "a.safetensors")
    data = path.read_bytes()
    assert b"[0.0, 6.0]" in data
    path.write_bytes(data.replace(b"[0.0, 6.0]", b"[0.0, 9.0]"))
    assert len(path.read_bytes()) == len(data)
    with pytest.raises(KvslError) as caught:
        load_artifact(path)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS402" and "manifest does not match its checksum" in diagnostic.message
    assert code_of(lambda: read_manifest(path)) == "KVS402"


def test_a_format_1_artifact_without_a_manifest_checksum_is_kvs403(vectors, tmp_path):
    from safetensors.torch import save_file

    manifest = {**vectors.manifest, "format_version": 1}
    tensors = {f"{kind}.{layer}": getattr(vectors, kind)[layer].contiguous()
               for kind in ("keys", "values") for layer in vectors.keys}
    path = tmp_path / "old.safetensors"
    save_file(tensors, str(path), metadata={"kvsl.format": "1", MANIFEST_KEY: json.dumps(manifest)})
    with pytest.raises(KvslError) as caught:
        load_artifact(path)
    assert caught.value.diagnostics[0].code == "KVS403"
    assert "checksum" in caught.value.diagnostics[0].message


def test_a_manifest_without_its_checksum_is_kvs402(vectors, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_artifact(vectors, tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = {k: v for k, v in handle.metadata().items() if k != CHECKSUM_KEY}
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (not a dict)
    save_file(tensors, str(path), metadata=metadata)
    assert code_of(lambda: load_artifact(path)) == "KVS402"


def test_artifacts_get_the_umasks_usual_mode(vectors, tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = save_artifact(vectors, tmp_path / "a.safetensors")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_one_manifest_reader_serves_plan_coefficients_and_system_prompt(vectors):
    from kvsl.engine.artifact import recorded_coefficients, recorded_plan, recorded_system_prompt
    from kvsl.engine.steer import coefficients_from_manifest

    manifest = vectors.manifest
    plan = recorded_plan(manifest)
    assert plan is not None and plan.vector_hash == manifest["vector_hash"]
    assert recorded_coefficients(manifest, 2) == coefficients_from_manifest(vectors)
    without_resolved = {k: v for k, v in manifest.items() if k != "coefficients"}
    assert recorded_coefficients(without_resolved, 2) == plan.steer.coefficients(2)
    assert recorded_system_prompt(manifest) == plan.contrast.system_prompt
    assert recorded_plan({"plan": {"style": "half a plan"}}) is None
    assert recorded_coefficients({}, 2) is None
