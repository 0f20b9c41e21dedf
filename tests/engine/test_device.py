"""`--device`: checked before loading (KVS309), and steering identities that hold on a GPU too.

The CUDA tests run only where torch sees a GPU (they are skipped in CI); the device machine
runs them with `python -m pytest tests/engine/test_device.py`.
"""

from __future__ import annotations

import pytest
import tiny_models as tiny
import torch
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.engine.generate import GenerationSettings, chat_prompt, generate_batch
from kvsl.engine.inputs import left_pad, position_ids
from kvsl.engine.models import cache_kwarg, kv_geometry, resolve_device
from kvsl.engine.steer import apply_edit, prefill, resolve_edit
from kvsl.lang.diagnostics import ExitCode, KvslError

OFFSET = 7  # "\n" in the tiny vocabulary
GREEDY = GenerationSettings(max_new_tokens=12)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("text", ["gpu", "cuda:99", "tpu", ""])
def test_unknown_or_missing_device_is_kvs309(text: str) -> None:
    with pytest.raises(KvslError) as caught:
        resolve_device(text)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "KVS309"
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"`{text}`" in diagnostic.message
    if not torch.cuda.is_available():  # the help offers only what this machine has
        assert diagnostic.help is not None and "`cuda" not in diagnostic.help


def test_cpu_and_auto() -> None:
    assert resolve_device(None) is None
    assert resolve_device("cpu") is None
    assert resolve_device(" CPU ") is None
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else None)


def test_run_rejects_a_bad_device_before_loading_anything(tmp_path) -> None:
    # The target does not exist either: the device is checked first, so no model loads.
    result = CliRunner().invoke(
        app, ["run", str(tmp_path / "none.kvs"), "--device", "gpu", "--prompt", "hi"]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "KVS309" in result.output
    assert "Traceback" not in result.output


def test_run_rejects_a_bad_precision() -> None:
    result = CliRunner().invoke(app, ["run", "x.kvs", "--precision", "fp8", "--prompt", "hi"])
    assert result.exit_code == ExitCode.USAGE
    assert "KVS457" in result.output and "fp8" in result.output


@cuda
def test_zero_coefficients_reproduce_plain_generation_on_cuda() -> None:
    model, tok = tiny.word_model("llama").to("cuda"), tiny.word_tokenizer()
    edit = resolve_edit(tiny.word_vectors(), {0: (0.0, 0.0), 1: (0.0, 0.0), 2: (0.0, 0.0)})
    for prompt in tiny.WORD_PROMPTS:
        row = chat_prompt(tok, prompt)
        ids = torch.tensor([[*row, OFFSET]], device="cuda")
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                pad_token_id=0,
            )
        new = out[0, ids.shape[1] :].tolist()
        expected = new[: new.index(2)] if 2 in new else new
        got = generate_batch(model, tok, [row], settings=GREEDY, offset_id=OFFSET, edit=edit)
        assert got == [expected]


@cuda
def test_steered_logits_on_cuda_match_the_cpu() -> None:
    tok = tiny.word_tokenizer()
    rows = [[*chat_prompt(tok, p), OFFSET] for p in tiny.WORD_PROMPTS]
    coefficients = {1: (0.5, 2.0), 2: (0.0, -3.0)}
    logits = {}
    for device in ("cpu", "cuda"):
        model = tiny.word_model("llama").to(device)
        ids, mask = left_pad([r[:-1] for r in rows], pad_id=0, device=device)  # (batch, seq)
        with torch.inference_mode():
            cache = prefill(model, ids, mask)
            edit = resolve_edit(tiny.word_vectors(), coefficients, kv_geometry(model))
            assert not edit.is_empty
            apply_edit(cache, edit)
            last = torch.full((len(rows), 1), OFFSET, device=device)
            full = torch.cat([mask, torch.ones_like(last)], dim=1)
            out = model(
                input_ids=last, attention_mask=full, position_ids=position_ids(full)[:, -1:],
                **{cache_kwarg(model): cache},
            )
        logits[device] = out.logits[:, -1, :].float().cpu()  # (batch, vocab)
    torch.testing.assert_close(logits["cuda"], logits["cpu"], atol=1e-4, rtol=1e-4)


@cuda
def test_load_model_puts_a_model_directory_on_cuda(tmp_path) -> None:
    from kvsl.engine.models import load_model, resolve_ref

    model = tiny.word_model("llama")
    model.save_pretrained(tmp_path)
    tiny.word_tokenizer().save_pretrained(tmp_path)
    loaded = load_model(resolve_ref(str(tmp_path)), device="auto")
    assert loaded.device.type == "cuda"
