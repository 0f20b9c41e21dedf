"""Corrupt model files are KVS302/KVS303, whatever exception their reader raises.

The loaders caught only OSError, ValueError, KeyError and RuntimeError, but a corrupt file
fails inside its reader with that reader's own types: safetensors' SafetensorError for a
truncated header, `struct.error` for a GGUF header cut after its magic. Each case below
was a traceback; each corrupts one file of a model that otherwise loads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kvsl.engine.models import load_model
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import ModelRef


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


DIRECTORY_CORRUPTIONS = {
    # name: (file in the model directory, how it is broken)
    "weights-cut-in-header": ("model.safetensors", lambda p: _truncate(p, 1000)),
    "weights-cut-in-data": ("model.safetensors", lambda p: _truncate(p, p.stat().st_size // 2)),
    "weights-garbage": ("model.safetensors", lambda p: p.write_bytes(b"\xff" * 64)),
    "weights-empty": ("model.safetensors", lambda p: p.write_bytes(b"")),
    "tokenizer-garbage": ("tokenizer.json", lambda p: p.write_bytes(b"\x00\x01not json")),
    "config-wrong-types": (
        "config.json",
        lambda p: p.write_text('{"model_type": "llama", "num_hidden_layers": "two"}'),
    ),
}


@pytest.mark.parametrize("name", sorted(DIRECTORY_CORRUPTIONS))
def test_corrupt_model_directory_is_kvs302(tmp_path: Path, tiny_model_dir: Path, name: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    file, corrupt = DIRECTORY_CORRUPTIONS[name]
    corrupt(broken / file)
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef("broken", "directory", str(broken)))
    assert caught.value.diagnostics[0].code in ("KVS302", "KVS303")


GGUF_FILES = {
    "magic-then-nothing": b"GGUF",
    "header-cut": b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
    "absurd-counts": b"GGUF\x03\x00\x00\x00" + b"\xff" * 16 + b"\x00" * 8,
    "not-gguf": b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
}


@pytest.mark.parametrize("name", sorted(GGUF_FILES))
def test_corrupt_gguf_is_kvs303(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(GGUF_FILES[name])
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef(path.name, "gguf", str(path)))
    assert caught.value.diagnostics[0].code == "KVS303"
