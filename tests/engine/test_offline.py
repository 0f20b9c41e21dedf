"""Offline generation with the batch kept full (`kvsl.engine.offline`): every row gives what
the static `generate_batch` gives it alone, token for token, whoever it shares the batch
with, and a row that ends makes room for the next at once."""

from __future__ import annotations

from dataclasses import replace

import pytest
import tiny_models as tiny

from kvsl.engine.continuous import RowDecoder
from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch
from kvsl.engine.offline import decode_queue, generate_texts, queue_rows
from kvsl.engine.rows import Row

OFFSET = 7  # "\n" in the word vocabulary
SUFFIX = (9, 10, 11)  # an assistant prefix ("Let's think step by step." in `kvsl eval`)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model(request):
    return tiny.word_model(request.param)


@pytest.fixture(scope="module")
def tok():
    return tiny.word_tokenizer()


def _prompts(tok) -> list[list[int]]:
    """Prompts of different lengths (the word prompts, and longer ones made of them)."""
    texts = [*tiny.WORD_PROMPTS, "w3 w9 w1 w2 w5 w6 w7 w8 w4 w10 w11 w12", "w13 w2"]
    return [chat_prompt(tok, t) for t in texts]


def _alone(model, tok, row: Row) -> list[int]:
    """The reference: `generate_batch`, the static path, with this row alone."""
    settings = replace(row.settings, max_new_tokens=row.max_new_tokens, stop=row.stop)
    return generate_batch(model, tok, [list(row.prompt)], settings=settings, offset_id=row.offset_id,
                          edit=row.edit if row.steered else None, suffix=row.suffix)[0]


def _mixed_rows(model, tok, settings: GenerationSettings) -> list[Row]:
    """Plain, steered (two styles), offset-only and chain-of-thought rows, mixed in one queue."""
    style_a, style_b = tiny.word_style_edits(model)
    kinds = [(None, None, ()), (OFFSET, style_a, ()), (OFFSET, style_b, SUFFIX), (OFFSET, None, ()),
             (None, None, SUFFIX), (OFFSET, style_a, SUFFIX)]
    return [
        Row(prompt, offset, edit, settings.max_new_tokens, settings.stop, settings=settings,
            suffix=suffix)
        for prompt in _prompts(tok) for offset, edit, suffix in kinds
    ]  # fmt: skip


def _end_early(model, tok) -> tuple[int, str]:
    """An end-of-sequence id and a stop word that some greedy rows reach, others not: the
    model is random, so both are read off its own output (the stop word off a row that the
    new end of sequence does not end early)."""
    greedy = GenerationSettings(max_new_tokens=12)
    first = generate_batch(model, tok, [_prompts(tok)[0]], settings=greedy)[0]
    eos = first[3]
    for prompt in _prompts(tok)[1:]:
        out = generate_batch(model, tok, [prompt], settings=greedy)[0]
        if eos not in out[:7]:
            return eos, tok.decode(out[5:6])
    raise AssertionError("every row reaches the chosen end of sequence early")


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_every_row_of_a_full_batch_equals_its_static_run_alone(model, tok, batch_size):
    eos, stop_word = _end_early(model, tok)
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = eos
    try:
        settings = GenerationSettings(max_new_tokens=12, stop=(stop_word,))
        rows = _mixed_rows(model, tok, settings)
        done: list[int] = []
        seconds = decode_queue(model, tok, rows, batch_size=batch_size,
                               on_done=lambda i, row, s: done.append(i))
        for row in rows:
            assert row.tokens == _alone(model, tok, row), (row.offset_id, row.suffix, row.prompt)
        assert sorted(done) == list(range(len(rows))) and all(s > 0 for s in seconds)
        reasons = {row.finish_reason for row in rows}
        assert reasons == {"stop", "length"}  # rows ended early (EOS, stop word) and at the cap
        assert len({len(row.tokens) for row in rows}) > 2
        assert any(stop_word in tok.decode(row.tokens) for row in rows)  # and a row's stop string
        assert rows[1].tokens != rows[3].tokens  # the edit does something
    finally:
        model.generation_config.eos_token_id = saved


def test_generate_texts_equals_the_static_batches(model, tok, monkeypatch):
    style_a, _ = tiny.word_style_edits(model)
    eos, stop_word = _end_early(model, tok)
    monkeypatch.setattr(model.generation_config, "eos_token_id", eos)
    settings = GenerationSettings(max_new_tokens=10, stop=(stop_word,), repetition_penalty=1.2)
    prompts = _prompts(tok)
    for edit in (None, style_a):
        finished: list[int] = []
        texts = generate_texts(model, tok, prompts, settings=settings, offset_id=OFFSET, edit=edit,
                               batch_size=2, on_batch=finished.append)
        monkeypatch.setattr("kvsl.engine.offline.continuous_supported", lambda _: False)
        static = generate_texts(model, tok, prompts, settings=settings, offset_id=OFFSET, edit=edit,
                                batch_size=1)
        monkeypatch.undo()
        monkeypatch.setattr(model.generation_config, "eos_token_id", eos)
        assert texts == static and finished == [1] * len(prompts)


def test_a_seeded_sampled_row_is_the_same_whatever_the_batch(model, tok):
    settings = GenerationSettings(max_new_tokens=10, sample=True, temperature=1.3, top_p=0.95, seed=3)
    outputs = []
    for batch_size in (1, 2, 5):
        rows = queue_rows(_prompts(tok), settings, offset_id=OFFSET)
        decode_queue(model, tok, rows, batch_size=batch_size)
        outputs.append([row.tokens for row in rows])
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][0] == _alone(model, tok, queue_rows(_prompts(tok)[:1], settings, offset_id=OFFSET)[0])
    other = queue_rows(_prompts(tok), replace(settings, seed=4), offset_id=OFFSET)
    decode_queue(model, tok, other, batch_size=2)
    assert [row.tokens for row in other] != outputs[0]


def test_the_batch_stays_full_while_rows_wait(model, tok, monkeypatch):
    eos, _ = _end_early(model, tok)
    monkeypatch.setattr(model.generation_config, "eos_token_id", eos)
    sizes: list[int] = []
    step = RowDecoder.step

    def counting(self):
        sizes.append(len(self.rows))
        return step(self)

    monkeypatch.setattr(RowDecoder, "step", counting)
    rows = queue_rows(_prompts(tok) * 2, GenerationSettings(max_new_tokens=12))
    ended: list[int] = []
    decode_queue(model, tok, rows, batch_size=3, on_done=lambda i, row, s: ended.append(len(sizes)))
    assert len({len(row.tokens) for row in rows}) > 1  # rows of different lengths
    waiting_steps = ended[len(rows) - 3]  # steps before the last row joined
    assert sizes[:waiting_steps] == [3] * waiting_steps
    assert len(sizes) < 12 * -(-len(rows) // 3)  # fewer steps than static batches of 3 take


def test_streaming_one_row_writes_what_it_returns(model, tok):
    from kvsl.engine.generate import TokenStreamer

    written: list[str] = []
    streamer = TokenStreamer(tok, write=written.append)
    texts = generate_texts(model, tok, _prompts(tok)[:1], settings=GenerationSettings(max_new_tokens=8),
                           streamer=streamer)
    assert "".join(written) == texts[0] + "\n" and len(written) > 2
