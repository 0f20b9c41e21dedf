"""scripts/dev_accuracy.py end to end on a tiny model and fixture benchmark files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from interrupting import interrupt_when_ready
from script_loader import load_script
from tiny_models import TINY_TRACES as SHARED_TRACES

from kvsl.lang.diagnostics import KvslError

FIXTURES = Path(__file__).parent / "fixtures"


def _script():
    return load_script("dev_accuracy")


def _data_root(tmp_path: Path) -> Path:
    root = tmp_path / "benchmarks"
    files = {
        "arc_challenge/ARC-Challenge-Dev.jsonl": "arc.jsonl",
        "csqa/dev_rand_split.jsonl": "csqa.jsonl",
        "piqa/train.jsonl": "piqa.jsonl",
        "piqa/train-labels.lst": "piqa-labels.lst",
    }
    for target, source in files.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / source, root / target)
    return root


def _spec(tmp_path: Path, model_dir: Path, name: str, value: float) -> Path:
    (tmp_path / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in SHARED_TRACES[:6]))
    spec = tmp_path / f"{name}.kvs"
    spec.write_text(
        f'style "{name}" {{\n  description = "tiny"\n  model = "{model_dir}"\n'
        '  contrast {\n    traces = "traces.jsonl"\n    pairs = 3\n    shots = 1\n  }\n'
        f"  steer {{\n    value = {value}\n  }}\n"
        "  generate {\n    repetition_penalty = 1.1\n  }\n}\n"
    )
    return spec


def _run(tmp_path: Path, specs: list[Path], doc: Path) -> int:
    import torch

    threads = torch.get_num_threads()  # the script sets torch's global thread count
    try:
        return _script().main(
            [
                "--data-root", str(_data_root(tmp_path)),
                "--specs", ",".join(str(s) for s in specs),
                "--limit", "3",
                "--max-new-tokens", "3",
                "--batch-size", "2",
                "--threads", "1",
                "--device", "cpu",
                "--out", str(tmp_path / "out"),
                "--doc", str(doc),
            ]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def test_dev_accuracy_writes_every_row_and_shares_plain(tmp_path: Path, tiny) -> None:
    model, tokenizer = tiny
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    first = _spec(tmp_path, model_dir, "step-by-step", 4)
    second = _spec(tmp_path, model_dir, "analogical", 0)
    doc = tmp_path / "dev_accuracy.md"
    assert _run(tmp_path, [first, second], doc) == 0

    text = doc.read_text()
    for style in ("step-by-step", "analogical"):
        for bench, n in (("ARC-Challenge", 3), ("CommonsenseQA", 2), ("PIQA", 3)):
            assert any(
                line.startswith(f"| {style} (") and f"| {bench} | {n} |" in line
                for line in text.splitlines()
            ), (style, bench)
    assert "capped at **3**" in text
    assert "annotated_deduction on PIQA" in text.split("Not measured yet")[1]
    data = json.loads((tmp_path / "out" / "dev-accuracy.json").read_text())
    rows = data["rows"]
    # Plain is generated once per benchmark and shared: the second style generates only its
    # own steered answers (3 per benchmark).
    assert rows["step-by-step"]["arc"]["generated"] == 6
    assert rows["analogical"]["arc"]["generated"] == 3
    # c_v = 0 on every layer reproduces plain generation exactly, so every answer agrees.
    zero = rows["analogical"]["arc"]
    assert zero["difference"] == 0 and zero["p_mcnemar"] == 1.0
    assert zero["plain"] == zero["steered"]
    assert zero["decoding"]["max_new_tokens"] == 3
    assert zero["decoding"]["repetition_penalty"] == 1.1
    # The calibrated forced choice decides the same answers again: c_v = 0 still agrees.
    assert zero["calibrated"]["difference"] == 0 and zero["calibrated"]["p_mcnemar"] == 1.0
    assert "forced choice calibrated" in text
    assert any(line.startswith("| step-by-step | PIQA |") for line in text.splitlines())

    # A rerun resumes from the cache (nothing generated) and keeps rows of styles not rerun.
    assert _run(tmp_path, [second], doc) == 0
    again = json.loads((tmp_path / "out" / "dev-accuracy.json").read_text())["rows"]
    assert again["analogical"]["piqa"]["generated"] == 0
    assert again["analogical"]["piqa"]["steered"] == rows["analogical"]["piqa"]["steered"]
    assert "step-by-step" in again
    # The document can be rewritten from the saved numbers alone (no model is loaded).
    doc.unlink()
    assert _script().main(["--doc-only", "--out", str(tmp_path / "out"), "--doc", str(doc)]) == 0
    assert "| analogical (" in doc.read_text()


def test_piqa_sample_is_fixed_and_test_splits_are_refused(tmp_path: Path) -> None:
    script = _script()
    root = _data_root(tmp_path)
    one = script.dev_examples(root, "piqa", 2, piqa_seed=0)
    assert [e.id for e in one] == [e.id for e in script.dev_examples(root, "piqa", 2, piqa_seed=0)]
    assert len(one) == 2
    script.BENCHMARKS = {**script.BENCHMARKS, "arc": ("arc_challenge/ARC-Challenge-Test.jsonl",
                                                      None, "arc", "ARC", "")}  # fmt: skip
    (root / "arc_challenge" / "ARC-Challenge-Test.jsonl").write_text("")
    with pytest.raises(KvslError) as err:
        script.dev_examples(root, "arc", 2, piqa_seed=0)
    assert err.value.diagnostics[0].code == "KVS700"


def test_sigint_stops_the_script_at_once_keeping_every_saved_answer(tmp_path: Path, tiny) -> None:
    """A real SIGINT to the script run as a shell script's background job would be (SIGINT
    inherited as ignored, which used to leave it running): exit 130 at once, no traceback,
    every cached line whole, fewer answers than the run would have made."""
    import signal
    import subprocess
    import sys

    model, tokenizer = tiny
    model_dir = tmp_path / "model"
    model.to("cpu").save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    spec = _spec(tmp_path, model_dir, "step-by-step", 4)
    tokens = 200  # every answer this long: the run lasts seconds
    spec.write_text(spec.read_text().replace(
        "repetition_penalty = 1.1", f"min_new_tokens = {tokens}\n    max_new_tokens = {tokens}"))
    results = tmp_path / "out" / "results.jsonl"
    args = [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "dev_accuracy.py"),
            "--data-root", str(_data_root(tmp_path)), "--specs", str(spec), "--benchmarks", "arc",
            "--limit", "6", "--max-new-tokens", str(tokens), "--batch-size", "1", "--threads", "1",
            "--device", "cpu", "--out", str(tmp_path / "out"), "--doc", str(tmp_path / "doc.md")]  # fmt: skip

    def lines() -> list[str]:
        return results.read_text(encoding="utf-8").splitlines() if results.exists() else []

    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    _, err, stopped_in = interrupt_when_ready(process, lambda: bool(lines()), wait=240, stop=60)
    message = err.decode()
    assert process.returncode == 130, message
    assert "interrupted: answers so far are saved in" in message and "Traceback" not in message
    assert stopped_in < 10  # a step of the tiny model is milliseconds: "at once"
    kept = [json.loads(line) for line in lines()]  # every line whole
    assert 1 <= len(kept) < 12  # 6 plain + 6 steered answers in a whole run
    assert all(r["tokens"] == tokens for r in kept)
