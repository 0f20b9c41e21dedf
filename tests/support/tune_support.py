"""The tiny tuning setup the tune tests share, and the distributed tune test (importable by
name from tests/support: conftest modules are not)."""

from __future__ import annotations

import json
from pathlib import Path

from tiny_models import TINY_TRACES, make_tiny_model

DEV = Path(__file__).resolve().parents[1] / "tune" / "fixtures" / "dev.jsonl"
# A user's spec with comments (which `--write` must keep), for the tiny model at {model}.
COMMENTED = """# My style: numbered steps.
style "step-by-step" {{
  description = "tiny"  # one line
  model = "{model}"

  contrast {{
    traces = "traces.jsonl"
    pairs = 3
    shots = 1
  }}

  # the steering
  steer {{
    layers = [1..]
    value = 6  # the reference
  }}
}}
"""


def save_tune_model(folder: Path) -> Path:
    """A 3-layer tiny Llama saved in `folder`."""
    model, tokenizer = make_tiny_model("llama", num_layers=3)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_spec(folder: Path, model_dir: Path) -> Path:
    """The commented spec and its 6 traces in `folder` (its own artifact cache)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES[:6]), encoding="utf-8"
    )
    spec = folder / "tiny.kvs"
    spec.write_text(COMMENTED.format(model=model_dir), encoding="utf-8")
    return spec
