"""Fixtures for eval tests: a tiny random Llama with a byte-level chat tokenizer.

The shared builder from tests/support/tiny_models.py with 3 layers instead of 2, so that CAA
can pick a layer other than 0 and the llama.cpp export has a layer to write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tiny_models import TINY_TRACES as SHARED_TRACES
from tiny_models import make_tiny_model

FIXTURES = Path(__file__).parent / "fixtures"
# `KVSL_TEST_DEVICE=cuda` runs the model tests on a GPU (the identities must hold there too).
DEVICE = os.environ.get("KVSL_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): a 3-layer random Llama (GQA 4/2, hidden 64), on `DEVICE`."""
    model, tokenizer = make_tiny_model("llama", num_layers=3)
    return model.to(DEVICE), tokenizer


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tiny) -> Path:
    """`tiny` saved to a folder, for the CLI and scripts that load a model by path."""
    model, tokenizer = tiny
    path = tmp_path_factory.mktemp("tiny-llama")
    model.to("cpu").save_pretrained(path)
    tokenizer.save_pretrained(path)
    model.to(DEVICE)
    return path


# The first six of the shared tiny traces: enough for 4 pairs at 1 shot plus a dev split.
TINY_TRACES = SHARED_TRACES[:6]


@pytest.fixture
def traces_file(tmp_path) -> Path:
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    return path


@pytest.fixture
def queues(monkeypatch) -> list[int]:
    """The rows of each `kvsl.engine.offline.decode_queue` call, in order (one per queue)."""
    import kvsl.engine.offline as offline

    seen: list[int] = []
    real = offline.decode_queue

    def spy(model, tokenizer, rows, **kwargs):
        seen.append(len(rows))
        return real(model, tokenizer, rows, **kwargs)

    monkeypatch.setattr(offline, "decode_queue", spy)
    return seen
