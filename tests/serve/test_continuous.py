"""Continuous batching at the tensor level: rows join a running batch and leave it early,
and every row still gets what it gets alone (`generate_batch`, what `kvsl run` calls)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import tiny_models as tiny

from kvsl.engine.continuous import RowDecoder, row_generator, unsupported_reason
from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch
from kvsl.engine.rows import Row

OFFSET = 7  # "\n" in the word vocabulary


def _alone(model, tok, row: Row) -> list[int]:
    settings = replace(row.settings, max_new_tokens=row.max_new_tokens, stop=row.stop)
    edit = row.edit if row.steered else None
    return generate_batch(model, tok, [list(row.prompt)], settings=settings,
                          offset_id=row.offset_id, edit=edit)[0]


def _prompts(tok):
    return [chat_prompt(tok, p) for p in tiny.WORD_PROMPTS]


def _run(decoder: RowDecoder, limit: int = 200) -> list[Row]:
    """Step until the batch is empty; the rows in the order they left."""
    left: list[Row] = []
    for _ in range(limit):
        if not decoder.rows:
            return left
        left += decoder.step()
    raise AssertionError("the batch did not empty")


def test_rows_that_join_mid_decode_equal_their_solo_runs(model, tok):
    style_a, style_b = tiny.word_style_edits(model)
    prompts = _prompts(tok)
    first = Row(prompts[0], OFFSET, style_a, max_new_tokens=12)
    joiners = [Row(prompts[1], max_new_tokens=5), Row(prompts[2], OFFSET, style_b, max_new_tokens=9)]
    late = Row(prompts[3], OFFSET, None, max_new_tokens=7)
    decoder = RowDecoder(model, tok)
    decoder.join([first])
    for _ in range(3):
        decoder.step()
    assert len(first.tokens) == 3 and not first.done
    decoder.join(joiners)  # two rows prefilled together, one plain, one of another style
    assert decoder.rows == [first, *joiners]
    decoder.step()
    decoder.join([late])
    left = _run(decoder)
    for row in (first, *joiners, late):
        assert row.tokens == _alone(model, tok, row), row
        assert row.finish_reason in ("stop", "length")
    assert sorted(left, key=id) == sorted([first, *joiners, late], key=id)
    assert joiners[1].tokens != _alone(model, tok, Row(prompts[2], OFFSET, None, max_new_tokens=9))


def test_a_short_row_leaves_while_a_long_one_continues(model, tok):
    prompts = _prompts(tok)
    long = Row(prompts[2], max_new_tokens=14)
    short = Row(prompts[0], max_new_tokens=2)
    decoder = RowDecoder(model, tok)
    decoder.join([long, short])
    sizes, left = [], []
    while decoder.rows:
        sizes.append(len(decoder.rows))
        left += decoder.step()
    assert left.index(short) < left.index(long)
    assert sizes[:2] == [2, 2] and sizes[2] == 1  # the short row's slot was freed at once
    assert len(short.tokens) == 2 and len(long.tokens) == 14
    assert long.tokens == _alone(model, tok, long) and short.tokens == _alone(model, tok, short)
    # The cache shrinks with the batch: only the long row's columns stay.
    again = RowDecoder(model, tok)
    again.join([Row(prompts[2], max_new_tokens=14), Row(prompts[1], max_new_tokens=1)])
    again.step()
    assert len(again.rows) == 1
    assert again.cached_length == len(prompts[2])  # T[:-1] + 1 fed token, no padding column


def test_each_row_decodes_with_its_own_controls_and_sampling(model, tok):
    prompts = _prompts(tok)
    controls = [
        GenerationSettings(repetition_penalty=1.3),
        GenerationSettings(no_repeat_ngram_size=2),
        GenerationSettings(min_new_tokens=6),
        GenerationSettings(sample=True, temperature=0.8, top_p=0.9, seed=4),
        GenerationSettings(sample=True, temperature=1.3, top_k=5, seed=9),
    ]
    rows = [Row(prompts[i % 4], max_new_tokens=10, settings=s) for i, s in enumerate(controls)]
    decoder = RowDecoder(model, tok)
    decoder.join(rows[:2])
    decoder.step()
    decoder.join(rows[2:4])
    decoder.step()
    decoder.step()
    decoder.join(rows[4:])
    _run(decoder)
    for row in rows:
        assert row.tokens == _alone(model, tok, row), row.settings


def test_rows_of_one_request_share_a_generator_and_differ(model, tok):
    prompt = _prompts(tok)[0]
    settings = GenerationSettings(sample=True, temperature=1.5, top_p=1.0, seed=2)
    rng = row_generator(2, "cpu")
    rows = [Row(prompt, max_new_tokens=10, settings=settings, rng=rng) for _ in range(2)]
    decoder = RowDecoder(model, tok)
    decoder.join(rows)
    _run(decoder)
    assert rows[0].tokens != rows[1].tokens  # n choices are not copies of one another


def test_cancelled_rows_leave_without_a_token_and_stop_strings_end_their_row(model, tok):
    prompts = _prompts(tok)
    free = Row(prompts[0], max_new_tokens=10)
    decoder = RowDecoder(model, tok)
    decoder.join([free])
    _run(decoder)
    stop_word = tok.decode(free.tokens[2:3])
    stopped = Row(prompts[0], max_new_tokens=10, stop=(stop_word,))
    cancelled = Row(prompts[1], max_new_tokens=10)
    other = Row(prompts[1], max_new_tokens=10)
    decoder.join([stopped, cancelled, other])
    decoder.step()
    decoder.step()
    cancelled.cancelled = True
    assert cancelled in decoder.step()
    assert cancelled.finish_reason == "cancelled" and len(cancelled.tokens) == 2
    _run(decoder)
    assert stopped.finish_reason == "stop" and stop_word not in stopped.text(tok)
    assert other.tokens == _alone(model, tok, other)


def test_a_one_token_prompt_joins_without_a_prefill(model, tok):
    rows = [Row([5], max_new_tokens=6), Row([5], max_new_tokens=6)]
    decoder = RowDecoder(model, tok)
    decoder.join(rows[:1])
    assert decoder.cached_length == 0
    decoder.step()
    decoder.join(rows[1:])  # nothing to prefill: its row of the cache is all padding
    _run(decoder)
    expected = generate_batch(model, tok, [[5]], settings=GenerationSettings(max_new_tokens=6))[0]
    assert rows[0].tokens == rows[1].tokens == expected


def test_a_steered_row_without_offset_is_refused(model, tok):
    style_a, _ = tiny.word_style_edits(model)
    with pytest.raises(ValueError):
        RowDecoder(model, tok).join([Row([5, 6], None, style_a)])


def test_models_the_decoder_cannot_reproduce_are_named(model):
    assert unsupported_reason(model) is None
    config = model.generation_config
    config.suppress_tokens = [3]
    try:
        assert "suppress_tokens" in (unsupported_reason(model) or "")
    finally:
        config.suppress_tokens = None
