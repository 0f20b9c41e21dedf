"""Decoding penalties in `GenerationSettings`: transformers' own processors, plain = steered path."""

from __future__ import annotations

import pytest
import tiny_models as tiny
import torch

from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch
from kvsl.engine.steer import resolve_edit

OFFSET = 7  # "\n" in the tiny vocabulary


@pytest.fixture(scope="module")
def tok():
    return tiny.word_tokenizer()


def _reference(model, row, **decoding):
    """transformers' generate over T + [o] with the same decoding keywords."""
    ids = torch.tensor([[*row, OFFSET]])
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False,
        pad_token_id=0, **decoding,
    )
    new = out[0, ids.shape[1] :].tolist()
    return new[: new.index(2)] if 2 in new else new


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_penalties_are_transformers_own_and_the_empty_edit_path_agrees(arch, tok):
    model = tiny.word_model(arch)
    rows = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]
    empty = resolve_edit(tiny.word_vectors(), {1: (0.0, 0.0)})
    changed = 0
    for penalty, ngram in ((1.3, 0), (1.0, 2), (1.2, 3)):
        settings = GenerationSettings(
            max_new_tokens=16, repetition_penalty=penalty, no_repeat_ngram_size=ngram
        )
        for row in rows:
            expected = _reference(model, row, repetition_penalty=penalty, no_repeat_ngram_size=ngram)
            assert generate_batch(model, tok, [row], settings=settings, offset_id=OFFSET) == [expected]
            steered = generate_batch(
                model, tok, [row], settings=settings, offset_id=OFFSET, edit=empty
            )
            assert steered == [expected]
            plain = _reference(model, row)
            changed += expected != plain
            if ngram:
                # No n-gram of the prompt-plus-output is generated twice.
                seq = [*row, OFFSET, *expected]
                grams = [tuple(seq[i : i + ngram]) for i in range(len(seq) - ngram + 1)]
                tail = grams[len(row) + 1 - ngram + 1 :]
                assert all(grams.count(g) == 1 for g in tail)
    assert changed > 0  # the penalties did something on these prompts


def test_defaults_leave_decoding_untouched():
    settings = GenerationSettings()
    assert (settings.repetition_penalty, settings.no_repeat_ngram_size) == (1.0, 0)
