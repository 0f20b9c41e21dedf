"""Real artifacts of a tiny model, and the same artifacts edited and re-signed as a
determined editor would (for the tamper and fuzz tests of `kvsl.engine.artifact`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiny_models import TINY_TRACES, make_plan

from kvsl.base.hashing import text_sha256
from kvsl.engine.artifact import CHECKSUM_KEY, FORMAT_KEY, MANIFEST_KEY, save_artifact
from kvsl.engine.extract import extract_vectors


def built_artifact(loaded: Any, folder: Path, pairs: int) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(manifest, tensors, path) of an artifact extracted from `loaded` with `pairs` pairs."""
    from safetensors import safe_open

    traces = folder / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in TINY_TRACES), encoding="utf-8")
    vectors = extract_vectors(loaded, make_plan(traces, pairs=pairs), progress=False)
    path = save_artifact(vectors, folder / "a.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (not a dict)
        return json.loads(handle.metadata()[MANIFEST_KEY]), tensors, path


def signed(path: Path, manifest: dict[str, Any], tensors: dict[str, Any]) -> Path:
    """An artifact at `path` holding `tensors` and exactly `manifest`, its manifest checksum
    recomputed (format 1 marker, as the tests of old files expect)."""
    from safetensors.torch import save_file

    text = json.dumps(manifest)
    save_file(tensors, str(path), metadata={FORMAT_KEY: "1", MANIFEST_KEY: text,
                                            CHECKSUM_KEY: text_sha256(text)})  # fmt: skip
    return path
