"""`kvsl tune` scores each setting with the coefficients the spec steers with once `--write`
has put that setting into it: the spec's per-range `at` blocks stay in the spec, so they
stay in the tuned coefficients too (`kvsl eval --value`, like `kvsl run --value`, replaces
them instead: a command-line flag sets the coefficient on every steered layer)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_models import TINY_TRACES, WORD_GEOMETRY, random_vectors

from kvsl.eval.session import coefficients
from kvsl.lang import load_plan
from kvsl.lang.overrides import parse_layers
from kvsl.tune.grid import Setting
from kvsl.tune.run import _method_factory
from kvsl.tune.write import changed_values, tuned_text

SPEC = """style "tuned" {
  description = "per-range coefficients"
  model = "MODEL"
  contrast {
    traces = "traces.jsonl"
    pairs = 4
    shots = 1
  }
  steer {
    layers = [1..]
    key = 0
    value = 6
    at [-1..-1] { value = 2  key = 1 }
  }
}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES))
    path = tmp_path / "tuned.kvs"
    path.write_text(SPEC.replace("MODEL", str(tmp_path / "model")), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("layers", "key", "value"),
    [("1..", 0.0, 6.0), ("1..", 0.0, 9.0), ("0..", 0.5, 4.0), ("2..", 0.0, 6.0)],
)
def test_a_tuned_setting_scores_what_the_written_spec_steers_with(spec, layers, key, value):
    plan = load_plan(spec)
    ctx = SimpleNamespace(plan=plan, num_layers=WORD_GEOMETRY.num_layers,
                          vectors=random_vectors(WORD_GEOMETRY))  # fmt: skip
    setting = Setting(plan.contrast.shots, parse_layers(layers), key, value, 1.0, 0)
    scored = dict((layer, (k, v)) for layer, k, v in _method_factory(ctx)(setting).coefficients)
    written = spec.with_name("written.kvs")
    text = tuned_text(spec.read_text(), str(spec), changed_values(plan, setting), "# kvsl tune: x")
    written.write_text(text, encoding="utf-8")
    assert scored == load_plan(written).steer.coefficients(WORD_GEOMETRY.num_layers)
    assert scored[2] == (1.0, 2.0)  # the `at` block's, whatever the setting's key and value
    # the command-line rule: `--key` / `--value` replace the per-range values
    flags = coefficients(ctx, layers=parse_layers(layers), key=key, value=value)  # type: ignore[arg-type]
    assert flags[2] == (key, value)
