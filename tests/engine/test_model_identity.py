"""The model identity covers a local directory's weights: re-saved weights are another model.

Real files throughout: a tiny random Llama saved with `save_pretrained`, loaded by
`load_model`, saved again with other weights (same config and tokenizer).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch
from rich.console import Console
from tiny_models import TINY_TRACES, make_tiny_model, tiny_spec

from kvsl.engine import fingerprint
from kvsl.engine.artifact import check_compatible
from kvsl.engine.build import build
from kvsl.engine.fingerprint import CACHE_FILE, weights_sha256
from kvsl.engine.models import identity_on_disk, load_model
from kvsl.engine.vectors import SteeringVectors
from kvsl.lang import load_plan
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import ModelRef


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KVSL_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def model_dir(tmp_path) -> Path:
    model, tokenizer = make_tiny_model("llama")
    folder = tmp_path / "my-model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def resave_with_other_weights(folder: Path) -> None:
    """Same config, same tokenizer, other weights (as after a fine-tuning step)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.add_(1e-3)
    model.save_pretrained(folder)


def zero_vectors(loaded) -> SteeringVectors:
    g = loaded.geometry
    zeros = {layer: torch.zeros(g.kv_heads, g.head_dim) for layer in range(g.num_layers)}
    return SteeringVectors(zeros, dict(zeros), "\n", {"model": dict(loaded.identity)})


def test_resaved_weights_are_refused_with_kvs407(model_dir) -> None:
    ref = ModelRef("my-model", "directory", str(model_dir))
    before = load_model(ref)
    vectors = zero_vectors(before)
    check_compatible(vectors, load_model(ref))  # unchanged: accepted
    resave_with_other_weights(model_dir)
    after = load_model(ref)
    for key in ("config_sha256", "tokenizer_sha256", "chat_template_sha256", "architecture"):
        assert after.identity[key] == before.identity[key], key
    assert len(before.identity["weights_sha256"]) == 64
    assert after.identity["weights_sha256"] != before.identity["weights_sha256"]
    with pytest.raises(KvslError) as caught:
        check_compatible(vectors, after)
    assert caught.value.diagnostics[0].code == "KVS407"
    assert "weights" in caught.value.diagnostics[0].message


def test_an_unchanged_model_is_not_hashed_again(model_dir, monkeypatch, private_cache) -> None:
    hashed: list[str] = []
    real = fingerprint.file_sha256

    def counting(path):
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(fingerprint, "file_sha256", counting)
    first = weights_sha256(model_dir)
    assert hashed == ["model.safetensors"] and (private_cache / "models" / CACHE_FILE).is_file()
    assert weights_sha256(model_dir) == first
    assert hashed == ["model.safetensors"]  # the second run read only the file's status
    # Other bytes of the same length, with the old modification time put back: the
    # change time still moves, so the file is hashed again.
    weights = model_dir / "model.safetensors"
    info = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert weights_sha256(model_dir) != first
    assert hashed == ["model.safetensors", "model.safetensors"]


def test_an_unwritable_fingerprint_cache_only_costs_a_rehash(model_dir, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("KVSL_CACHE_DIR", str(blocker))
    assert weights_sha256(model_dir) == weights_sha256(model_dir) != ""


@pytest.fixture
def spec(tmp_path, model_dir) -> Path:
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8"
    )
    path = tmp_path / "tiny.kvs"
    path.write_text(tiny_spec(model_dir, pairs=2), encoding="utf-8")
    return path


def test_build_is_not_up_to_date_after_the_model_directory_changed(spec, model_dir) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)

    def again() -> bool:
        return build(load_plan(spec), console=console, progress=False).built

    assert again()
    assert identity_on_disk(load_plan(spec).model)["weights_sha256"] == weights_sha256(model_dir)
    assert not again() and "up to date" in out.getvalue()
    resave_with_other_weights(model_dir)
    assert again()
    assert "weight files changed since this artifact was built; rebuilding" in out.getvalue()
    assert not again()
    config = json.loads((model_dir / "config.json").read_text())
    config["rms_norm_eps"] = config.get("rms_norm_eps", 1e-6) * 10
    (model_dir / "config.json").write_text(json.dumps(config))
    assert again()
    assert "configuration changed since this artifact was built" in out.getvalue()
