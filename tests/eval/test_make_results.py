"""scripts/make_results.py end to end on a tiny model and fixture benchmark files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from script_loader import load_script
from tiny_models import TINY_TRACES as SHARED_TRACES

FIXTURES = Path(__file__).parent / "fixtures"
TINY_TRACES = SHARED_TRACES[:6]  # as in conftest.py


def _script():
    return load_script("make_results")


def _data_root(tmp_path: Path) -> Path:
    root = tmp_path / "benchmarks"
    files = {
        "arc_challenge/ARC-Challenge-Test.jsonl": "arc.jsonl",
        "arc_challenge/ARC-Challenge-Dev.jsonl": "arc.jsonl",
        "piqa/valid.jsonl": "piqa.jsonl",
        "piqa/valid-labels.lst": "piqa-labels.lst",
        "piqa/train.jsonl": "piqa.jsonl",
        "piqa/train-labels.lst": "piqa-labels.lst",
    }
    for target, source in files.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / source, root / target)
    return root


def test_make_results_writes_the_document(tmp_path: Path, tiny) -> None:
    model, tokenizer = tiny
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (tmp_path / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES))
    spec = tmp_path / "tiny.kvs"
    spec.write_text(
        f'style "step-by-step" {{\n  description = "tiny"\n  model = "{model_dir}"\n'
        '  contrast {\n    traces = "traces.jsonl"\n    pairs = 3\n    shots = 1\n  }\n}\n'
    )
    doc = tmp_path / "results.md"
    import torch

    threads = torch.get_num_threads()  # the script sets torch's global thread count
    try:
        code = _run_script(tmp_path, spec, doc)
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    _check(doc, tmp_path)


def _run_script(tmp_path: Path, spec: Path, doc: Path) -> int:
    return _script().main(
        [
            "--data-root",
            str(_data_root(tmp_path)),
            "--spec",
            str(spec),
            "--benchmarks",
            "arc,piqa",
            "--limit",
            "3",
            "--dev-limit",
            "2",
            "--max-new-tokens",
            "3",
            "--batch-size",
            "4",
            "--caa-layers",
            "1,2",
            "--caa-multipliers",
            "1",
            "--speed-prompts",
            "2",
            "--speed-tokens",
            "3",
            "--speed-repeats",
            "1",
            "--tune-values",
            "0,3",
            "--tune-dev-limit",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--doc",
            str(doc),
        ]
    )


def _check(doc: Path, tmp_path: Path) -> None:
    text = doc.read_text()
    assert "ARC-Challenge: first 3 test questions" in text
    assert "PIQA: first 3 valid (as test) questions" in text
    assert "| ARC-Challenge | 24.32 | 27.13 |" in text
    assert "## Speed: ms per generated token" in text
    for method in ("plain", "cot", "cache", "caa"):
        assert f"| {method} |" in text
    assert (tmp_path / "out" / "results-summary.json").exists()
    assert "on x86_64 CPU" in text or "CPU," in text  # where it was measured
    # c_v chosen on dev, then run on test: its own report, a plot beside the document.
    assert "## Cache steering with c_v chosen on the dev split" in text
    row = next(line for line in text.splitlines() if line.startswith("| ARC-Challenge | 0:"))
    chosen = row.split(" | ")[2]
    assert chosen in ("0", "3")
    assert (tmp_path / "out" / f"eval-arc-ARC-Challenge-Test-value{chosen}.json").exists()
    assert (tmp_path / "out" / "eval-arc-ARC-Challenge-Test.json").exists()  # not overwritten
    assert (doc.parent / "img" / "sweep-value-arc.png").stat().st_size > 1000
    assert "![arc c_v sweep](img/sweep-value-arc.png)" in text
    summary = json.loads((tmp_path / "out" / "results-summary.json").read_text())
    assert summary["arc"]["tuned"]["best"] == float(chosen)
