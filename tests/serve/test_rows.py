"""Per-row cache edits: a batch mixing plain rows and several styles equals each row alone."""

from __future__ import annotations

import pytest
import tiny_models as tiny
import torch

from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch, left_pad
from kvsl.engine.rows import Row, generate_rows
from kvsl.engine.steer import apply_edit, apply_row_edits, prefill, resolve_edit

OFFSET = 7  # "\n" in the word vocabulary
GREEDY = GenerationSettings(max_new_tokens=10)


def _alone(model, tok, row: Row) -> list[int]:
    """The reference: `generate_batch` (what `kvsl run` calls) with this row alone."""
    settings = GenerationSettings(max_new_tokens=row.max_new_tokens)
    edit = row.edit if row.edit is not None and not row.edit.is_empty else None
    return generate_batch(
        model, tok, [list(row.prompt)], settings=settings, offset_id=row.offset_id, edit=edit
    )[0]


def test_row_edits_equal_the_single_edit_row_by_row(model, tok):
    ids, mask = left_pad([chat_prompt(tok, p) for p in tiny.WORD_PROMPTS[:3]], pad_id=0)
    style_a, style_b = tiny.word_style_edits(model)
    with torch.inference_mode():
        mixed = prefill(model, ids, mask)
        apply_row_edits(mixed, [style_a, None, style_b])
        for row, edit in enumerate([style_a, None, style_b]):
            alone = prefill(model, ids[row : row + 1], mask[row : row + 1])
            if edit is not None:
                apply_edit(alone, edit)
            for got, want in zip(mixed.layers, alone.layers, strict=True):
                assert torch.equal(got.keys[row : row + 1], want.keys)
                assert torch.equal(got.values[row : row + 1], want.values)


def test_a_mixed_batch_equals_each_row_alone_token_for_token(model, tok):
    style_a, style_b = tiny.word_style_edits(model)
    prompts = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]
    zero = resolve_edit(tiny.word_vectors(), {1: (0.0, 0.0)})
    rows = [
        Row(prompts[0], OFFSET, style_a, max_new_tokens=10),
        Row(prompts[1], max_new_tokens=10),  # plain: T, no offset token
        Row(prompts[2], OFFSET, style_b, max_new_tokens=6),  # its own length limit
        Row(prompts[3], OFFSET, zero, max_new_tokens=10),  # a style at coefficient 0
        Row(prompts[0], OFFSET, None, max_new_tokens=10),  # plain from T + [o]
    ]
    generate_rows(model, tok, rows, settings=GREEDY)
    for row in rows:
        assert row.tokens == _alone(model, tok, row)
        assert row.finish_reason in ("stop", "length")
    assert rows[2].tokens != _alone(model, tok, Row(prompts[2], OFFSET, None, max_new_tokens=6))
    assert len(rows[2].tokens) <= 6


def test_coefficient_zero_rows_equal_plain_rows(model, tok):
    prompts = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]
    zero = resolve_edit(tiny.word_vectors(), {0: (0.0, 0.0), 2: (0.0, 0.0)})
    steered_a, _ = tiny.word_style_edits(model)
    zero_rows = [Row(p, OFFSET, zero, max_new_tokens=8) for p in prompts]
    # A steered neighbour forces the split prefill: zero rows still equal plain T + [o].
    generate_rows(model, tok, [*zero_rows, Row(prompts[0], OFFSET, steered_a, max_new_tokens=8)])
    plain = generate_batch(model, tok, prompts, settings=GenerationSettings(max_new_tokens=8),
                           offset_id=OFFSET)
    assert [row.tokens for row in zero_rows] == plain


def test_stop_strings_and_cancellation_end_only_their_row(model, tok):
    prompts = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS[:2]]
    free = Row(prompts[0], max_new_tokens=10)
    generate_rows(model, tok, [free])
    stop_word = tok.decode(free.tokens[2:3])
    steps = []
    stopped = Row(prompts[0], max_new_tokens=10, stop=(stop_word,))
    cancelled = Row(prompts[1], max_new_tokens=10)
    other = Row(prompts[1], max_new_tokens=10)

    def on_step():
        steps.append(len(other.tokens))
        if len(steps) == 2:
            cancelled.cancelled = True

    generate_rows(model, tok, [stopped, cancelled, other], on_step=on_step)
    assert stopped.finish_reason == "stop" and stop_word not in stopped.text(tok)
    assert stopped.tokens == free.tokens[: len(stopped.tokens)]
    assert cancelled.finish_reason == "cancelled" and len(cancelled.tokens) == 2
    assert other.tokens == _alone(model, tok, other)


def test_sampling_rows_are_reproducible_with_the_seed(model, tok):
    prompts = [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS[:2]]
    settings = GenerationSettings(sample=True, temperature=1.0, top_p=0.95, seed=3)
    first = generate_rows(model, tok, [Row(p, max_new_tokens=8) for p in prompts], settings=settings)
    again = generate_rows(model, tok, [Row(p, max_new_tokens=8) for p in prompts], settings=settings)
    assert [r.tokens for r in first] == [r.tokens for r in again]
    single = generate_batch(model, tok, prompts[:1], settings=GenerationSettings(
        max_new_tokens=8, sample=True, temperature=1.0, top_p=0.95, seed=3))
    alone = generate_rows(model, tok, [Row(prompts[0], max_new_tokens=8)], settings=settings)
    assert alone[0].tokens == single[0]


def test_a_steered_row_without_offset_is_refused(model, tok):
    style_a, _ = tiny.word_style_edits(model)
    with pytest.raises(ValueError):
        generate_rows(model, tok, [Row([5, 6], None, style_a)])
