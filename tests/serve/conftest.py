"""Fixtures shared by the row-level serve tests: the tiny word model (Llama and Qwen2) and
its tokenizer."""

from __future__ import annotations

import pytest
import tiny_models as tiny


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model(request):
    return tiny.word_model(request.param)


@pytest.fixture(scope="module")
def tok():
    return tiny.word_tokenizer()
