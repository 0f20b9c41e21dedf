"""Fixtures for engine tests: tiny random models built from a config, no hub downloads.

`tiny_llama` and `tiny_qwen2` return `(model, tokenizer)`: a 2-layer causal LM with
grouped-query attention (4 query heads, 2 KV heads, head_dim 16) and a byte-level
tokenizer (every byte is one token, so "\\n" is a single token) with a ChatML chat
template. `tiny_loaded_llama` / `tiny_loaded_qwen2` wrap them in a `LoadedModel`.
Plain helpers (`make_tiny_model`, `make_plan`, `TINY_TRACES`) live in
tests/support/tiny_models.py, the one tiny-model kit (its word kit serves the steering tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES, make_plan, make_tiny_model


@pytest.fixture(scope="session")
def tiny_llama():
    """(model, tokenizer): a 2-layer random Llama with GQA and a byte-level tokenizer."""
    return make_tiny_model("llama")


@pytest.fixture(scope="session")
def tiny_qwen2():
    """(model, tokenizer): a 2-layer random Qwen2 with GQA and a byte-level tokenizer."""
    return make_tiny_model("qwen2")


@pytest.fixture(params=["llama", "qwen2"])
def tiny_any(request, tiny_llama, tiny_qwen2):
    """Both architectures, one after the other."""
    return tiny_llama if request.param == "llama" else tiny_qwen2


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_llama) -> Path:
    """The tiny Llama saved as a local model directory (model + tokenizer)."""
    model, tokenizer = tiny_llama
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _loaded(pair, name: str):
    from kvsl.engine.models import loaded_from_objects
    from kvsl.lang.plan import ModelRef

    model, tokenizer = pair
    return loaded_from_objects(model, tokenizer, ModelRef(name, "directory", f"/tiny/{name}"))


@pytest.fixture(scope="session")
def tiny_loaded_llama(tiny_llama):
    """The tiny Llama wrapped in a `kvsl.engine.models.LoadedModel`."""
    return _loaded(tiny_llama, "tiny-llama")


@pytest.fixture(scope="session")
def tiny_loaded_qwen2(tiny_qwen2):
    """The tiny Qwen2 wrapped in a `kvsl.engine.models.LoadedModel`."""
    return _loaded(tiny_qwen2, "tiny-qwen2")


@pytest.fixture
def tiny_traces(tmp_path) -> Path:
    """A small trace file (8 short traces) in the kvsl JSONL schema."""
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    return path


@pytest.fixture
def tiny_plan(tiny_traces):
    """A 4-pair, 1-shot random-selection plan over `tiny_traces` for the tiny Llama."""
    return make_plan(tiny_traces)
