"""Rebuild the prebuilt vectors the built-in styles ship with (`specs/vectors/`).

    python scripts/build_shipped.py                 # every built-in spec
    python scripts/build_shipped.py step-by-step    # one style
    python scripts/build_shipped.py --check         # exit 1 when any shipped vector is stale
    python scripts/build_shipped.py --reindex       # index.json from the files present
    python scripts/build_shipped.py --reuse-built   # take up-to-date `kvsl build` artifacts
    python scripts/build_shipped.py --restamp       # new vector-hash rule, same inputs

For each built-in spec: compile it, extract its vectors on the embedded model (the spec's
own `model`, which must be the embedded one), write `specs/vectors/<style>.safetensors`
and record the file's sha256 and the plan's vector hash in `specs/vectors/index.json`
(see `kvsl.engine.shipped`, which verifies both before using a file). Run it after
changing a built-in spec's contrast or extraction settings or its traces; `kvsl build` on an edited spec
warns (KVS310) until the shipped vectors are rebuilt.

`--restamp` is for a change of the vector hash's rule alone (`VECTOR_HASH_FORMAT` in
`kvsl.lang.plan`): it gives each shipped artifact the current vector hash when the plan
its manifest records, hashed by today's rule, gives today's plan's hash, i.e. when the
vectors were extracted from the inputs today's spec names. The tensors are written
back byte for byte; anything else is refused and needs a rebuild.

Paths in the written manifests are relative to the repository, so no local path ships.
Threads: `--threads 2` (default) keeps a shared machine usable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPECS = ROOT / "specs"


def _relative_manifest(manifest: dict) -> dict:
    """The manifest with every absolute path under the repository made relative to it."""
    text = json.dumps(manifest, ensure_ascii=False).replace(str(ROOT) + "/", "")
    return json.loads(text)


def _plans(names: list[str]) -> list:
    from kvsl.lang import load_plan
    from kvsl.styles import BUILTIN_STYLES, builtin_style

    chosen = [builtin_style(n) for n in names] if names else list(BUILTIN_STYLES.values())
    missing = [n for n, info in zip(names, chosen, strict=False) if info is None]
    if missing:
        sys.exit(f"not a built-in style: {', '.join(missing)}")
    return [load_plan(SPECS / info.spec_file) for info in chosen if info is not None]


def check(plans: list) -> int:
    """0 when every plan's shipped vectors are present and current, else 1 (listing them)."""
    from kvsl.engine.shipped import find_shipped

    stale = [plan.style for plan in plans if find_shipped(plan) is None]
    for style in stale:
        print(f"stale or missing: {style}")
    return 1 if stale else 0


def _built(plan: Any) -> Any:
    """The plan's `kvsl build` artifact when one with its vector hash exists, else None.

    Extraction is deterministic, so the cached artifact (content-addressed by the vector
    hash, `kvsl.engine.build.artifact_path_for`) holds the vectors a fresh extraction
    would; reusing it saves one extraction per style on a crowded CPU.
    """
    from kvsl.engine.artifact import load_artifact
    from kvsl.engine.build import artifact_path_for

    path = artifact_path_for(plan)
    if not path.is_file():
        return None
    vectors = load_artifact(path)
    if vectors.manifest.get("vector_hash") != plan.vector_hash:
        return None
    return vectors


def build_all(
    plans: list, threads: int, skip_current: bool = False, reuse_built: bool = False
) -> None:
    import torch

    from kvsl.engine.artifact import save_artifact
    from kvsl.engine.build import _slug
    from kvsl.engine.extract import extract_vectors
    from kvsl.engine.models import load_model
    from kvsl.engine.shipped import find_shipped, shipped_dir
    from kvsl.engine.vectors import SteeringVectors

    torch.set_num_threads(threads)
    folder = shipped_dir(SPECS / "step_by_step.kvs")
    folder.mkdir(parents=True, exist_ok=True)
    loaded = None
    for plan in plans:
        if skip_current and find_shipped(plan) is not None:
            print(f"{plan.style}: shipped vectors are current, skipped")
            continue
        if plan.model.kind != "embedded":
            sys.exit(f"`{plan.style}` names `{plan.model.name}`: only embedded models ship")
        source: SteeringVectors | None = _built(plan) if reuse_built else None
        if source is None:
            if loaded is None or loaded.ref != plan.model:
                loaded = load_model(plan.model, dtype=torch.float32, device="cpu")
            source = extract_vectors(loaded, plan, progress=True)
        else:
            print(f"{plan.style}: reusing the up-to-date `kvsl build` artifact")
        vectors = SteeringVectors(
            source.keys,
            source.values,
            source.offset_token,
            _relative_manifest(source.manifest),
            prefix=source.prefix,
        )
        name = f"{_slug(plan.style)}.safetensors"
        path = save_artifact(vectors, folder / name)
        path.chmod(0o644)  # package data: readable by everyone once installed
        _record(plan, path)  # after each style: an interrupted run keeps the rest
        stats = vectors.manifest.get("stats", {})
        seconds = stats.get("seconds") if isinstance(stats, dict) else None
        print(f"{plan.style}: {path.relative_to(ROOT)} ({path.stat().st_size} bytes, {seconds} s)")


def _record(plan: Any, path: Path) -> None:
    """Enter `path` in the index as the shipped artifact of `plan` (its sha256 and hash)."""
    from kvsl.base.hashing import file_sha256
    from kvsl.engine.shipped import ShippedEntry, read_index, write_index

    spec = Path(plan.spec_path).name
    entries = read_index(path.parent)  # re-read: another run may have added entries since
    entries[spec] = ShippedEntry(
        spec=spec,
        file=path.name,
        sha256=file_sha256(path),
        vector_hash=plan.vector_hash,
        style=plan.style,
        model=plan.model.name,
    )
    write_index(path.parent, entries)


def _rehashed(manifest: dict) -> str | None:
    """The vector hash today's rule gives the plan `manifest` records, None without one."""
    import dataclasses

    from kvsl.engine.artifact import recorded_plan
    from kvsl.lang.plan import Plan

    recorded = recorded_plan(manifest)
    if recorded is None:
        return None
    fields = {f.name: getattr(recorded, f.name) for f in dataclasses.fields(recorded)}
    fields.pop("vector_hash")
    fields.pop("plan_hash")
    return Plan.create(**fields).vector_hash


def restamp(plans: list) -> int:
    """Give each shipped artifact today's vector hash when only the hash's rule changed.

    0 when every plan's artifact is current afterwards; 1 (naming them) when some were
    extracted from other inputs and need a rebuild instead. See the module docstring.
    """
    from kvsl.engine.artifact import load_artifact, save_artifact
    from kvsl.engine.build import _slug
    from kvsl.engine.shipped import find_shipped, shipped_dir
    from kvsl.engine.vectors import SteeringVectors

    folder = shipped_dir(SPECS / "step_by_step.kvs")
    refused = []
    for plan in plans:
        path = folder / f"{_slug(plan.style)}.safetensors"
        if find_shipped(plan) is not None:
            print(f"{plan.style}: current")
            continue
        old = load_artifact(path) if path.is_file() else None
        if old is None or _rehashed(dict(old.manifest)) != plan.vector_hash:
            refused.append(plan.style)
            continue
        manifest = {k: v for k, v in old.manifest.items() if k != "artifact_path"}
        manifest["vector_hash"] = plan.vector_hash
        manifest["plan"] = {**manifest["plan"], "vector_hash": plan.vector_hash}
        vectors = SteeringVectors(
            old.keys, old.values, old.offset_token, manifest, prefix=old.prefix
        )
        save_artifact(vectors, path).chmod(0o644)
        if load_artifact(path).manifest["tensors_sha256"] != old.manifest["tensors_sha256"]:
            sys.exit(f"{plan.style}: the tensors changed while re-stamping")  # never expected
        _record(plan, path)
        print(
            f"{plan.style}: re-stamped {str(old.manifest['vector_hash'])[:12]} → "
            f"{plan.vector_hash[:12]}"
        )
    for style in refused:
        print(f"{style}: extracted from other inputs, rebuild it (no --restamp)")
    return 1 if refused else 0


def reindex(plans: list) -> None:
    """Rewrite the index from the artifacts present (sha256 and manifest vector hash)."""
    from kvsl.base.hashing import file_sha256
    from kvsl.engine.artifact import read_manifest
    from kvsl.engine.build import _slug
    from kvsl.engine.shipped import ShippedEntry, shipped_dir, write_index

    folder = shipped_dir(SPECS / "step_by_step.kvs")
    entries = {}
    for plan in plans:
        path = folder / f"{_slug(plan.style)}.safetensors"
        if path.is_file():
            spec = Path(plan.spec_path).name
            entries[spec] = ShippedEntry(
                spec=spec,
                file=path.name,
                sha256=file_sha256(path),
                vector_hash=str(read_manifest(path).get("vector_hash")),
                style=plan.style,
                model=plan.model.name,
            )
    write_index(folder, entries)
    print(f"indexed {len(entries)} artifacts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("styles", nargs="*", help="built-in style names (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--check", action="store_true", help="only report stale vectors")
    parser.add_argument(
        "--skip-current", action="store_true", help="leave styles whose vectors are current"
    )
    parser.add_argument(
        "--reuse-built",
        action="store_true",
        help="take a style's vectors from its up-to-date `kvsl build` artifact when there is one",
    )
    parser.add_argument(
        "--reindex", action="store_true", help="rewrite index.json from the files present"
    )
    parser.add_argument(
        "--restamp",
        action="store_true",
        help="give the shipped vectors today's vector hash when only its rule changed",
    )
    args = parser.parse_args(argv)
    plans = _plans(args.styles)
    if args.check:
        return check(plans)
    if args.reindex:
        reindex(plans)
        return 0
    if args.restamp:
        return restamp(plans)
    build_all(plans, args.threads, args.skip_current, args.reuse_built)
    return 0


if __name__ == "__main__":
    from kvsl.base.interrupt import stop_on_interrupt

    with stop_on_interrupt(None):  # Ctrl-C: exit 130 at once, no traceback
        raise SystemExit(main())
