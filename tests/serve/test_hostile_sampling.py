"""One request must never fail the batch it shares: sampling settings OpenAI's range allows
but float32 cannot draw from, and bodies refused with the reason.

`temperature: 5e-324` is inside OpenAI's 0..2. Logits divided by it overflow to inf, the
softmax is NaN, and `torch.multinomial` raised inside the decoding step: every request
decoding in that batch got a 500 (found by a hostile-client sweep). Now such a request
decodes greedily, which is what sampling gives in float32 far above that temperature,
and the decoder itself draws a row's token only from a finite distribution.
"""

from __future__ import annotations

import json
import threading

import pytest
import tiny_models as tiny
from serve_support import MODEL_ID, ServerProcess, raw, tiny_workspace
from test_continuous import OFFSET, _alone, _prompts, _run

from kvsl.engine.continuous import RowDecoder
from kvsl.engine.generate import GenerationSettings
from kvsl.engine.rows import Row
from kvsl.serve.schemas import GREEDY_BELOW, ApiError, parse_body

DENORMAL = 5e-324  # the smallest positive float


def test_a_row_with_no_finite_distribution_takes_its_argmax_and_spares_the_batch(model, tok):
    style, _ = tiny.word_style_edits(model)
    prompts = _prompts(tok)
    overflowing = GenerationSettings(sample=True, temperature=DENORMAL, seed=3)
    rows = [Row(prompts[0], OFFSET, style, max_new_tokens=8),
            Row(prompts[1], max_new_tokens=8, settings=overflowing),
            Row(prompts[2], max_new_tokens=8, settings=GenerationSettings(sample=True, temperature=0.9, seed=5))]
    decoder = RowDecoder(model, tok)
    decoder.join(rows)

    _run(decoder)  # raised RuntimeError ("probability tensor contains inf, nan") at step 1

    greedy = Row(prompts[1], max_new_tokens=8)
    assert rows[1].tokens == _alone(model, tok, greedy)  # T -> 0: the greedy tokens
    assert rows[0].tokens == _alone(model, tok, rows[0])  # its neighbours: as alone
    assert rows[2].tokens == _alone(model, tok, rows[2])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tiny_workspace(tmp_path_factory.mktemp("hostile-sampling"))
    process = ServerProcess(root, str(root / "alpha.kvs"), "--max-batch", "4", "--gather-ms", "200")
    yield process
    code, log = process.stop()
    assert code == 0 and "Traceback" not in log, log


def _chat(server, **fields):
    body = {"model": f"{MODEL_ID}:alpha", "messages": [{"role": "user", "content": "Hello there"}],
            "max_tokens": 8, **fields}
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", json.dumps(body), timeout=120)
    return status, json.loads(text)


@pytest.mark.parametrize("temperature", [DENORMAL, 1e-40, GREEDY_BELOW / 10])
def test_a_temperature_too_small_to_draw_from_fails_no_request_of_its_batch(server, temperature):
    alone = _chat(server)[1]["choices"][0]["message"]["content"]
    greedy = _chat(server, temperature=0)[1]["choices"][0]["message"]["content"]
    answers: dict[str, tuple[int, dict]] = {}
    # Sent together (within --gather-ms): prefilled and decoded in one batch.
    threads = [threading.Thread(target=lambda: answers.__setitem__("good", _chat(server))),
               threading.Thread(target=lambda: answers.__setitem__(
                   "tiny", _chat(server, temperature=temperature, top_p=0.5, seed=1)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert answers["good"][0] == 200, answers["good"]
    assert answers["good"][1]["choices"][0]["message"]["content"] == alone
    assert answers["tiny"][0] == 200, answers["tiny"]
    assert answers["tiny"][1]["choices"][0]["message"]["content"] == greedy
    assert server.wait_idle()["in_flight"] == 0


def test_a_small_but_drawable_temperature_still_samples(server):
    status, body = _chat(server, temperature=GREEDY_BELOW * 10, seed=1)
    assert status == 200 and body["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("raw_body", "says"),
    [
        (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800 hi"}]}',
         "a string with a lone surrogate (not Unicode text) (line 1 column 58)"),
        (b'{"model": "m",\n "messages": [}', "Expecting value (line 2 column 15)"),
        (b"[" * 100_000, "nested too deeply"),
    ],
    ids=["lone-surrogate", "syntax", "deep"],
)
def test_a_body_that_is_not_json_says_why_and_where(raw_body: bytes, says: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_body(raw_body)
    error = err.value.body()["error"]
    assert err.value.status == 400 and error["code"] == "invalid_json"
    assert error["message"].startswith("the body is not valid JSON: ") and says in error["message"]
