"""Methods on a tiny random Llama: exact identities, scoped hooks, CAA and its GGUF export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_models import random_vectors

from kvsl.engine.generate import GenerationSettings, chat_prompt
from kvsl.engine.inputs import left_pad
from kvsl.eval.caa import (
    CaaVectors,
    caa_from_control_vector,
    caa_steering,
    export_control_vector,
    extract_caa,
    read_control_vector,
    resolve_layer,
)
from kvsl.eval.methods import (
    COT_PREFIX,
    Generator,
    Job,
    caa_method,
    cache_method,
    cot_method,
    parse_methods,
    plain_method,
)
from kvsl.lang.diagnostics import KvslError

QUESTIONS = [
    "What is 2 + 3?",
    "Is ice cold? Answer yes or no.",
    "Pick one.\n\nChoices:\nA: x\nB: y",
]
GREEDY = GenerationSettings(max_new_tokens=12)


def _reference(model, tokenizer, ids: list[int], max_new_tokens: int = 12) -> list[int]:
    """Plain greedy `generate` on one unpadded prompt: the ground truth."""
    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.tensor([ids], device=model.device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    row = out[0, len(ids) :].tolist()
    return row[: next((i for i, t in enumerate(row) if t == 2), len(row))]


def _text(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


def test_parse_methods() -> None:
    assert parse_methods("plain,cot,cache,cache+cot,caa") == (
        "plain",
        "cot",
        "cache",
        "cache+cot",
        "caa",
    )
    with pytest.raises(KvslError) as err:
        parse_methods("plain,steer")
    assert err.value.diagnostics[0].code == "KVS610"


def test_plain_and_cot_match_reference_generation(tiny) -> None:
    model, tokenizer = tiny
    gen = Generator(model, tokenizer, batch_size=2)
    plain = gen.generate(plain_method(), QUESTIONS, GREEDY)
    cot = gen.generate(cot_method(), QUESTIONS, GREEDY)
    cot_ids = tokenizer.encode(COT_PREFIX, add_special_tokens=False)
    for question, p, c in zip(QUESTIONS, plain, cot, strict=True):
        ids = chat_prompt(tokenizer, question)
        assert p.text == _text(tokenizer, _reference(model, tokenizer, ids))
        assert c.text == _text(tokenizer, _reference(model, tokenizer, ids + cot_ids))
        assert p.tokens == len(_reference(model, tokenizer, ids))
        assert p.seconds > 0


@pytest.mark.parametrize("cot", [False, True])
def test_cache_steering_at_zero_equals_unsteered_offset_prompt(tiny, cot: bool) -> None:
    model, tokenizer = tiny
    vectors = random_vectors(model, scale=5.0)
    gen = Generator(model, tokenizer, batch_size=3)
    zero = cache_method(vectors, {1: (0.0, 0.0), 2: (0.0, 0.0)}, cot=cot)
    out = gen.generate(zero, QUESTIONS, GREEDY)
    offset = tokenizer.encode("\n", add_special_tokens=False)
    suffix = tokenizer.encode(COT_PREFIX, add_special_tokens=False) if cot else []
    for question, g in zip(QUESTIONS, out, strict=True):
        ids = chat_prompt(tokenizer, question) + offset + suffix
        assert g.text == _text(tokenizer, _reference(model, tokenizer, ids))


def test_cache_steering_changes_output_and_batches_equal_singles(tiny) -> None:
    model, tokenizer = tiny
    vectors = random_vectors(model, scale=20.0)
    method = cache_method(vectors, {1: (0.0, 8.0), 2: (0.0, 8.0)}, cot=True)
    batched = Generator(model, tokenizer, batch_size=3).generate(method, QUESTIONS, GREEDY)
    single = Generator(model, tokenizer, batch_size=1).generate(method, QUESTIONS, GREEDY)
    assert [g.text for g in batched] == [g.text for g in single]
    zero = cache_method(vectors, {1: (0.0, 0.0)}, cot=True)
    plain = Generator(model, tokenizer, batch_size=3).generate(zero, QUESTIONS, GREEDY)
    assert [g.text for g in batched] != [g.text for g in plain]


def test_method_settings_distinguish_methods(tiny) -> None:
    model, _ = tiny
    vectors = random_vectors(model)
    a = cache_method(vectors, {1: (0.0, 4.0)})
    b = cache_method(vectors, {1: (0.0, 6.0)})
    c = cache_method(vectors, {1: (0.0, 4.0)}, cot=True)
    assert len({str(m.settings()) for m in (a, b, c, plain_method(), cot_method())}) == 5


# --- CAA ---------------------------------------------------------------------------------


def _pairs(tokenizer) -> list[tuple[list[int], list[int]]]:
    texts = [
        ("Think step by step: what is 2 + 3?", "What is 2 + 3?"),
        ("Reason carefully. Is ice cold?", "Is ice cold?"),
        ("Explain each step. Do fish swim?", "Do fish swim?"),
    ]
    return [(chat_prompt(tokenizer, p), chat_prompt(tokenizer, n)) for p, n in texts]


def test_extract_caa_matches_hidden_states(tiny) -> None:
    model, tokenizer = tiny
    pairs = _pairs(tokenizer)
    vectors = extract_caa(model, pairs)
    assert vectors.num_layers == 3 and vectors.pairs == 3
    assert vectors.directions[0].shape == (64,)
    # Cross-check with output_hidden_states: hidden_states[l + 1] is layer l's output
    # (except the last, which transformers returns after the final norm).
    with torch.inference_mode():
        for layer in (0, 1):
            diffs = []
            for pos, neg in pairs:
                hp = model(torch.tensor([pos], device=model.device), output_hidden_states=True)
                hn = model(torch.tensor([neg], device=model.device), output_hidden_states=True)
                diffs.append(
                    (hp.hidden_states[layer + 1][0, -1] - hn.hidden_states[layer + 1][0, -1]).cpu()
                )
            expected = torch.stack(diffs).mean(0)
            torch.testing.assert_close(vectors.directions[layer], expected, rtol=1e-4, atol=1e-5)


def test_extract_caa_batched_equals_single(tiny) -> None:
    model, tokenizer = tiny
    pairs = _pairs(tokenizer)
    one = extract_caa(model, pairs, batch_size=1)
    four = extract_caa(model, pairs, batch_size=4)
    for layer in range(3):
        torch.testing.assert_close(
            one.directions[layer], four.directions[layer], rtol=1e-4, atol=1e-5
        )


def _hook_counts(model) -> list[int]:
    return [len(layer._forward_hooks) for layer in model.model.layers]


def test_caa_hook_is_scoped_and_multiplier_zero_is_plain(tiny) -> None:
    model, tokenizer = tiny
    vectors = extract_caa(model, _pairs(tokenizer))
    ids, mask = left_pad([chat_prompt(tokenizer, q) for q in QUESTIONS], 0, model.device)
    hooks = _hook_counts(model)
    with torch.inference_mode():
        before = model(input_ids=ids, attention_mask=mask).logits
        with caa_steering(model, vectors, layer=1, multiplier=50.0):
            during = model(input_ids=ids, attention_mask=mask).logits
        after = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.equal(before, during)
    assert torch.equal(before, after)
    assert _hook_counts(model) == hooks

    gen = Generator(model, tokenizer, batch_size=3)
    plain = gen.generate(plain_method(), QUESTIONS, GREEDY)
    zero = gen.generate(caa_method(vectors, 1, 0.0), QUESTIONS, GREEDY)
    strong = gen.generate(caa_method(vectors, 1, 50.0), QUESTIONS, GREEDY)
    assert [g.text for g in zero] == [g.text for g in plain]
    assert [g.text for g in strong] != [g.text for g in plain]
    assert _hook_counts(model) == hooks


def test_caa_hook_removed_after_an_error(tiny) -> None:
    model, _tokenizer = tiny
    vectors = CaaVectors({i: torch.ones(64) for i in range(3)})
    hooks = _hook_counts(model)
    with pytest.raises(RuntimeError), caa_steering(model, vectors, layer=-1, multiplier=1.0):
        assert _hook_counts(model) != hooks
        raise RuntimeError("boom")
    assert _hook_counts(model) == hooks


def test_caa_layer_outside_model(tiny) -> None:
    model, _ = tiny
    assert resolve_layer(model, -1) == 2
    with pytest.raises(KvslError) as err:
        resolve_layer(model, 3)
    assert err.value.diagnostics[0].code == "KVS614"


def test_control_vector_gguf_round_trip(tiny, tmp_path: Path) -> None:
    import gguf

    model, tokenizer = tiny
    vectors = extract_caa(model, _pairs(tokenizer))
    path = export_control_vector(vectors, tmp_path / "caa.gguf", layers=[1, 2], multiplier=2.5)
    reader = gguf.GGUFReader(str(path))
    assert sorted(t.name for t in reader.tensors) == ["direction.1", "direction.2"]
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "controlvector"
    count = reader.fields["controlvector.layer_count"]
    assert int(count.parts[count.data[0]][0]) == 2
    hint, directions = read_control_vector(path)
    assert hint == "llama"
    torch.testing.assert_close(directions[1], 2.5 * vectors.directions[1])
    torch.testing.assert_close(directions[2], 2.5 * vectors.directions[2])
    loaded = caa_from_control_vector(path, num_layers=3)
    assert float(loaded.directions[0].abs().sum()) == 0.0
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_control_vector_refuses_layer_zero_and_missing_folder(tiny, tmp_path: Path) -> None:
    vectors = CaaVectors({i: torch.ones(64) for i in range(3)})
    with pytest.raises(KvslError) as err:
        export_control_vector(vectors, tmp_path / "x.gguf", layers=[0])
    assert err.value.diagnostics[0].code == "KVS617"
    with pytest.raises(KvslError) as err:
        export_control_vector(vectors, tmp_path / "missing" / "x.gguf", layers=[1])
    assert err.value.diagnostics[0].code == "KVS615"


def test_forced_choices_pick_a_valid_label(tiny) -> None:
    model, tokenizer = tiny
    gen = Generator(model, tokenizer, batch_size=2)
    picks = gen.forced_choices(
        plain_method(), QUESTIONS[:2], ["hmm", "not sure"], [("A", "B", "C"), ("A", "B")]
    )
    assert picks[0] in {"A", "B", "C"} and picks[1] in {"A", "B"}


def test_a_full_batch_gives_the_static_batches_answers(tiny, monkeypatch) -> None:
    """`kvsl eval` keeps its batch full (`kvsl.engine.offline`); each answer is the one the
    static batches gave: plain, chain of thought, steered with and without the CoT prefix."""
    model, tokenizer = tiny
    vectors = random_vectors(model, scale=20.0)
    methods = [plain_method(), cot_method(), cache_method(vectors, {1: (0.0, 8.0)}),
               cache_method(vectors, {1: (0.0, 8.0), 2: (0.0, 4.0)}, cot=True)]  # fmt: skip
    questions = QUESTIONS * 2 + ["Why?", "Name three colours of the rainbow, please."]
    settings = GenerationSettings(max_new_tokens=12, repetition_penalty=1.2)
    full = Generator(model, tokenizer, batch_size=3)
    answered: list[int] = []
    kept = {m.name: full.generate(m, questions, settings, on_done=lambda i, g: answered.append(i))
            for m in methods}  # fmt: skip
    assert sorted(answered) == sorted(list(range(len(questions))) * len(methods))
    monkeypatch.setattr("kvsl.engine.offline.continuous_supported", lambda _: False)
    static = {m.name: Generator(model, tokenizer, batch_size=1).generate(m, questions, settings)
              for m in methods}  # fmt: skip
    for name in kept:
        assert [(g.text, g.tokens) for g in kept[name]] == [(g.text, g.tokens) for g in static[name]]
        assert all(g.seconds > 0 for g in kept[name])
    assert kept["cache"] != kept["plain"]


def test_jobs_of_several_methods_and_decodings_share_one_queue(tiny, queues) -> None:
    """`generate_jobs` decodes every job's rows in ONE queue (one tail, not one per
    method), and each row still gives what it gives alone: its own edit, its own logits
    processors and its own token budget, whoever shares the batch with it."""
    model, tokenizer = tiny
    vectors = random_vectors(model, scale=20.0)
    jobs = [
        Job(plain_method(), QUESTIONS, GenerationSettings(max_new_tokens=10)),
        Job(cache_method(vectors, {1: (0.0, 8.0)}), QUESTIONS[:2],
            GenerationSettings(max_new_tokens=12, repetition_penalty=1.3)),
        Job(cache_method(vectors, {2: (0.0, 4.0)}, cot=True), QUESTIONS,
            GenerationSettings(max_new_tokens=6, no_repeat_ngram_size=2)),
        Job(plain_method(), ["Why?"], GenerationSettings(max_new_tokens=12, repetition_penalty=1.3)),
    ]  # fmt: skip
    done: list[tuple[int, int]] = []
    together = Generator(model, tokenizer, batch_size=3).generate_jobs(
        jobs, on_done=lambda j, i, g: done.append((j, i))
    )
    assert queues == [sum(len(job.questions) for job in jobs)]
    assert sorted(done) == sorted((j, i) for j, job in enumerate(jobs) for i in range(len(job.questions)))
    alone = [Generator(model, tokenizer, batch_size=1).generate(j.method, j.questions, j.settings)
             for j in jobs]  # fmt: skip
    for joint, single in zip(together, alone, strict=True):
        assert [(g.text, g.tokens) for g in joint] == [(g.text, g.tokens) for g in single]
    for job, answers in zip(jobs, together, strict=True):
        assert all(0 < g.tokens <= job.settings.max_new_tokens for g in answers)
    assert [g.text for g in together[1]] != [g.text for g in together[0][:2]]  # steered
