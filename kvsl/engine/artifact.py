"""Steering-vector artifacts on disk: one safetensors file that describes itself.

Layout (format version 2):

    keys.<layer>     float32 (kv_heads, head_dim), one per model layer (0 … L-1)
    values.<layer>   float32 (kv_heads, head_dim)
    metadata (the safetensors header's string map):
      "kvsl.format"    "1"
      "kvsl.manifest"  the manifest as JSON (below)
      "kvsl.manifest_sha256"  sha256 of that JSON text: it records `tensors_sha256`, so
                       this one checksum covers the manifest and, through it, the tensors

The manifest holds: `format_version`, `kvsl_version`, `created` (UTC ISO 8601), `style`,
`model` (identity: name, kind, architecture, revision or GGUF sha256, config, tokenizer and
chat-template hashes), `geometry` (num_layers, kv_heads, head_dim), `position`
(convention, offset token and its id, the prompt prefix), `layers` (stored), `pairs` (N), `shots`,
`selection`, `seed`, `precision` and `compute_dtype`, `vector_hash`, `plan_hash`,
`traces_sha256`, `steer` (the spec's recommended coefficients) and `coefficients`
(resolved: layer → [c_k, c_v]), `stats` (seconds, tokens), `tensors_sha256` (over the
tensor bytes, checked on load) and `plan` (the full `Plan.to_dict()`). Format 1 had no
manifest checksum (an edited coefficient went unnoticed); such files are refused (KVS403)
and `kvsl build` rebuilds them.

`recorded_plan` is the one reader of the plan inside a manifest: the CLI (`plan_of_artifact`),
the coefficients a run falls back to and the system prompt of the Python API all go
through it.

There is no sidecar file: one file is written atomically (temp file in the same folder,
fsync, `os.replace`), so an artifact is either complete or absent.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import kvsl
from kvsl.base.atomic import atomic_path
from kvsl.base.hashing import text_sha256
from kvsl.base.jsonl import dumps, loads
from kvsl.base.plurals import counted
from kvsl.engine.models import KVGeometry, LoadedModel
from kvsl.engine.vectors import Extraction, SteeringVectors
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.plan import Plan
from kvsl.lang.reading import close_file_hint
from kvsl.lang.source import Span

FORMAT_VERSION = 2
FORMAT_KEY = "kvsl.format"
MANIFEST_KEY = "kvsl.manifest"
CHECKSUM_KEY = "kvsl.manifest_sha256"


def make_manifest(
    plan: Plan,
    loaded: LoadedModel,
    *,
    offset_token_id: int,
    pairs: int,
    compute_dtype: str,
    stats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of vectors extracted for `plan` on `loaded` (see the module docstring)."""
    geometry = loaded.geometry
    try:
        coefficients = {
            str(layer): [ck, cv]
            for layer, (ck, cv) in plan.steer.coefficients(geometry.num_layers).items()
        }
    except ValueError:  # layers beyond this model: the checker reports it, keep the spec's
        coefficients = {}
    plan_dict = plan.to_dict()
    return {
        "format_version": FORMAT_VERSION,
        "kvsl_version": kvsl.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "style": plan.style,
        "description": plan.description,
        "model": dict(loaded.identity),
        "geometry": geometry.to_dict(),
        "position": {
            "convention": plan.extract.position,
            "offset_token": plan.extract.offset_token,
            "offset_token_id": offset_token_id,
            "prefix": plan.extract.prefix,
        },
        "layers": list(range(geometry.num_layers)),
        "pairs": pairs,
        "shots": plan.contrast.shots,
        "selection": plan.contrast.selection,
        "seed": plan.contrast.seed,
        "precision": plan.extract.precision,
        "compute_dtype": compute_dtype,
        "vector_hash": plan.vector_hash,
        "plan_hash": plan.plan_hash,
        "spec_path": plan.spec_path,
        "traces_sha256": plan.contrast.traces_sha256,
        "questions_sha256": plan.contrast.questions_sha256,
        "steer": plan_dict["steer"],
        "coefficients": coefficients,
        "stats": stats or {},
        "plan": plan_dict,
    }


def describe(extraction: Extraction, plan: Plan, loaded: LoadedModel) -> SteeringVectors:
    """The vectors of `extraction` with their manifest (`make_manifest`), ready to save."""
    manifest = make_manifest(
        plan,
        loaded,
        offset_token_id=extraction.offset_token_id,
        pairs=extraction.pairs,
        compute_dtype=extraction.compute_dtype,
        stats=extraction.stats,
    )
    return SteeringVectors(
        extraction.keys,
        extraction.values,
        plan.extract.offset_token,
        manifest,
        prefix=plan.extract.prefix,
    )


def _tensors(vectors: SteeringVectors) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for layer in sorted(vectors.keys):
        tensors[f"keys.{layer}"] = vectors.keys[layer].detach().to(torch.float32).cpu().contiguous()
        tensors[f"values.{layer}"] = (
            vectors.values[layer].detach().to(torch.float32).cpu().contiguous()
        )
    return tensors


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, shapes and float32 bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].to(torch.float32).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def save_artifact(vectors: SteeringVectors, path: str | os.PathLike[str]) -> Path:
    """Write vectors + manifest to `path` atomically; returns the path.

    >>> save_artifact(vectors, "style.safetensors")   # doctest: +SKIP
    PosixPath('style.safetensors')
    """
    from safetensors.torch import save_file

    target = Path(path)
    tensors = _tensors(vectors)
    manifest = {**vectors.manifest, "tensors_sha256": tensors_sha256(tensors)}
    manifest.pop("artifact_path", None)
    manifest.setdefault("format_version", FORMAT_VERSION)
    manifest.setdefault(
        "position", {"offset_token": vectors.offset_token, "prefix": vectors.prefix}
    )
    manifest_text = dumps(manifest)
    metadata = {
        FORMAT_KEY: str(FORMAT_VERSION),
        MANIFEST_KEY: manifest_text,
        CHECKSUM_KEY: text_sha256(manifest_text),
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, fsync=True) as temporary:
            save_file(tensors, str(temporary), metadata=metadata)
    except OSError as err:
        raise KvslError.one(
            "KVS406",
            f"cannot write artifact `{target}`: {err.strerror or err}",
            Span.whole_file(str(target)),
            help="choose a writable folder with `--out DIR`",
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an artifact without loading its tensors (raises like `load_artifact`)."""
    return _open(Path(path))[0]


def recorded_plan(manifest: Mapping[str, Any]) -> Plan | None:
    """The plan a manifest records, or None when it records none or an unreadable one.

    >>> recorded_plan({"style": "s"}) is None
    True
    """
    data = manifest.get("plan")
    if not isinstance(data, Mapping):
        return None
    try:
        return Plan.from_dict(dict(data))
    except (KeyError, TypeError, ValueError):
        return None


def recorded_coefficients(
    manifest: Mapping[str, Any], num_layers: int
) -> dict[int, tuple[float, float]] | None:
    """The spec's coefficients a manifest records (layer → (c_k, c_v)), or None.

    The resolved `coefficients` entry when there is one that reads as layer → two finite
    numbers, else the recorded plan's `steer` (checked by `Plan.from_dict`).

    >>> recorded_coefficients({"coefficients": {"1": [0.0, 6.0]}}, 2)
    {1: (0.0, 6.0)}
    >>> recorded_coefficients({"coefficients": {"1": [0.0, float("nan")]}}, 2) is None
    True
    """
    resolved = manifest.get("coefficients")
    if isinstance(resolved, Mapping) and resolved:
        try:
            read = {int(layer): (float(kv[0]), float(kv[1])) for layer, kv in resolved.items()}
        except (TypeError, ValueError, IndexError, KeyError, OverflowError):  # 10**400
            read = {}
        if read and all(math.isfinite(c) for pair in read.values() for c in pair):
            return read
    plan = recorded_plan(manifest)
    if plan is None:
        return None
    try:
        return plan.steer.coefficients(num_layers)
    except ValueError:  # layers beyond this model
        return None


def recorded_system_prompt(manifest: Mapping[str, Any]) -> str | None:
    """The system prompt the vectors were extracted with (None: the chat template's)."""
    plan = recorded_plan(manifest)
    return None if plan is None else plan.contrast.system_prompt


def plan_of_artifact(path: str | os.PathLike[str], *, instead: str) -> Plan:
    """The plan an artifact was built from, read from its manifest.

    Raises KVS456 when the manifest records none (or an unreadable one); `instead` is the
    command to suggest, e.g. "kvsl run SPEC.kvs".
    """
    manifest = read_manifest(path)
    plan = recorded_plan(manifest)
    if plan is None:
        raise KvslError.one(
            "KVS456",
            f"artifact `{path}` {_no_plan(manifest)}",
            Span.whole_file(str(path)),
            help=f"use the spec instead: `{instead}`",
        )
    return plan


def _no_plan(manifest: Mapping[str, Any]) -> str:
    """Why `recorded_plan` found no plan in `manifest` (worded after "artifact `PATH`")."""
    if "plan" not in manifest:
        return "does not record the plan it was built from"
    try:
        Plan.from_dict(dict(manifest["plan"]))
    except (KeyError, TypeError, ValueError) as err:  # an edited manifest, checksum and all
        return f"records a plan that cannot be read ({err})"
    return "records a plan that cannot be read"


def _looks_like_safetensors(path: Path) -> bool:
    """Whether the file opens as safetensors does: an 8-byte little-endian header length,
    then a JSON object (`{`). A damaged artifact still does, so it is reported as corrupt
    (rebuild it); a text file passed by mistake does not, and must not be called corrupt,
    since the advice for a corrupt artifact is to delete it.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".md") as f:
    ...     _ = f.write(b"# kvsl notes"); f.flush()
    ...     _looks_like_safetensors(Path(f.name))
    False
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError:
        return True  # let safetensors report what it cannot read
    if len(head) < 9:
        return True  # empty or cut short: a truncated artifact
    return head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 32


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The metadata and tensors of the safetensors file at `path`, read with Python's own
    file API: safetensors' `safe_open` refuses a path that is not UTF-8 (a folder named
    with other bytes), and that read as a corrupt artifact. Artifacts are small (two
    `kv_heads x head_dim` tensors per layer), so reading the bytes whole costs nothing."""
    from safetensors.torch import load

    data = path.read_bytes()
    header = loads(data[8 : 8 + int.from_bytes(data[:8], "little")], unicode_only=False)
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("`__metadata__` is not an object")
    return metadata, load(data)


def _open(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if path.is_dir():
        raise KvslError.one(
            "KVS400",
            f"artifact `{path}` is a directory",
            Span.whole_file(str(path)),
            help="pass the `.safetensors` file `kvsl build` printed (built vectors sit in the "
            "spec's `vectors/` folder)",
        )
    if not path.is_file():
        raise KvslError.one(
            "KVS400",
            f"artifact `{path}` does not exist" if not path.exists() else f"`{path}` is not a regular file",
            Span.whole_file(str(path)),
            help=close_file_hint(str(path), (".safetensors",))
            + "build it with `kvsl build SPEC`, or check the path",
        )
    if not _looks_like_safetensors(path):
        raise KvslError.one(
            "KVS401",
            f"`{path}` is not a safetensors file, so not a kvsl artifact",
            Span.whole_file(str(path)),
            help="pass the `.safetensors` file `kvsl build` printed",
        )
    try:
        metadata, tensors = _read_safetensors(path)
        if MANIFEST_KEY not in metadata:
            raise KvslError.one(
                "KVS401",
                f"`{path}` is a safetensors file but not a kvsl artifact (no manifest)",
                Span.whole_file(str(path)),
                help="pass an artifact written by `kvsl build`",
            )
    except KvslError:
        raise
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise KvslError.one(
            "KVS402",
            f"artifact `{path}` is corrupt or truncated "
            f"({(str(err).splitlines() or [type(err).__name__])[0]})",
            Span.whole_file(str(path)),
            help="delete it and rebuild with `kvsl build SPEC --force`",
        ) from None
    try:
        manifest = loads(metadata[MANIFEST_KEY], paths=_PATH_KEYS)
        if not isinstance(manifest, dict):
            raise ValueError("the manifest is not a JSON object")
    except ValueError as err:
        raise KvslError.one(
            "KVS402",
            f"artifact `{path}` has an unreadable manifest ({err})",
            Span.whole_file(str(path)),
            help="delete it and rebuild with `kvsl build SPEC --force`",
        ) from None
    _check_manifest_checksum(path, metadata, manifest)
    return manifest, tensors


# Manifest keys whose strings are file paths: a name with bytes that are not UTF-8 is kept
# as surrogate escapes there; any other string reaches a tokenizer or a terminal as text.
_PATH_KEYS = frozenset({"spec_path", "traces", "template", "questions"})


def _check_manifest_checksum(path: Path, metadata: dict[str, str], manifest: dict[str, Any]) -> None:
    """KVS402 when the manifest text differs from its checksum; KVS403 for format 1 files.

    Nothing in the manifest is trusted before this: it holds the coefficients a run uses.
    """
    recorded = metadata.get(CHECKSUM_KEY)
    if recorded is None:
        version = manifest.get("format_version")
        if version == 1:
            raise KvslError.one(
                "KVS403",
                f"artifact `{path}` has format version 1, whose manifest is not covered by a "
                f"checksum; this kvsl ({kvsl.__version__}) reads version {FORMAT_VERSION}",
                Span.whole_file(str(path)),
                help="rebuild it with `kvsl build SPEC` (it replaces the old file)",
            )
        problem = "its manifest has no checksum"
    elif recorded != text_sha256(metadata[MANIFEST_KEY]):
        problem = "its manifest does not match its checksum (edited after build?)"
    else:
        return
    raise KvslError.one(
        "KVS402",
        f"artifact `{path}` is corrupt: {problem}",
        Span.whole_file(str(path)),
        help="delete it and rebuild with `kvsl build SPEC --force`",
    )


def load_artifact(path: str | os.PathLike[str]) -> SteeringVectors:
    """Read and verify an artifact: format version, tensors present, shapes, checksum.

    Corrupt, truncated, modified or foreign files raise KvslError (KVS400-KVS403).

    >>> vectors = load_artifact(".kvsl/artifacts/step-by-step-0123456789ab.safetensors")  # doctest: +SKIP
    >>> vectors.manifest["model"]["name"]                                                 # doctest: +SKIP
    'smollm2-135m'
    """
    target = Path(path)
    manifest, tensors = _open(target)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise KvslError.one(
            "KVS403",
            f"artifact `{target}` has format version {version!r}, this kvsl "
            f"({kvsl.__version__}) reads version {FORMAT_VERSION}",
            Span.whole_file(str(target)),
            help="upgrade kvsl, or rebuild the artifact with this version: `kvsl build SPEC --force`",
        )
    layers = manifest.get("layers")
    problem = _manifest_problem(manifest) or _tensor_problem(manifest, tensors)
    if problem is None and manifest.get("tensors_sha256") != tensors_sha256(tensors):
        problem = "its tensors do not match the checksum in its manifest (modified after build?)"
    if problem:
        raise KvslError.one(
            "KVS402",
            f"artifact `{target}` is corrupt: {problem}",
            Span.whole_file(str(target)),
            help="delete it and rebuild with `kvsl build SPEC --force`",
        )
    assert isinstance(layers, list)
    keys = {int(layer): tensors[f"keys.{layer}"].float() for layer in layers}
    values = {int(layer): tensors[f"values.{layer}"].float() for layer in layers}
    position = manifest.get("position") or {}
    offset = position.get("offset_token", "\n")
    prefix = position.get("prefix") or ""
    manifest["artifact_path"] = str(target)  # in memory only: lets diagnostics name the file
    return SteeringVectors(keys, values, offset, manifest, prefix=prefix)


def _tensor_problem(manifest: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> str | None:
    """A layer's key or value tensor missing, of another shape than the manifest's geometry
    says, or not finite; None when every listed layer has both."""
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        return "the manifest lists no layers"
    geometry = manifest.get("geometry") or {}
    expected = (geometry.get("kv_heads"), geometry.get("head_dim"))
    for layer in layers:
        for kind in ("keys", "values"):
            tensor = tensors.get(f"{kind}.{layer}")
            if tensor is None:
                return f"tensor `{kind}.{layer}` is missing"
            if tuple(tensor.shape) != expected:
                return f"tensor `{kind}.{layer}` has shape {tuple(tensor.shape)}, expected {expected}"
            if not torch.isfinite(tensor).all():
                return f"tensor `{kind}.{layer}` holds NaN or infinite values"
    return None


def _manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with the parts of a manifest that loading and steering read, when they
    do not have the shapes `save_artifact` writes (a manifest edited and re-checksummed:
    the checksum proves only that the text was not changed after it was computed)."""

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    geometry, position = manifest.get("geometry"), manifest.get("position")
    if not isinstance(manifest.get("model", {}), dict):
        return "its manifest's `model` is not an object"
    if geometry is not None and not (
        isinstance(geometry, dict)
        and all(count(geometry.get(k)) for k in ("num_layers", "kv_heads", "head_dim"))
    ):
        return "its manifest's `geometry` is not {num_layers, kv_heads, head_dim} counts"
    if position is not None and not (
        isinstance(position, dict)
        and isinstance(position.get("offset_token", "\n"), str)
        and isinstance(position.get("prefix") or "", str)
    ):
        return "its manifest's `position` does not hold an offset token and a prefix as text"
    layers = manifest.get("layers")
    if isinstance(layers, list) and not all(count(layer) for layer in layers):
        return "its manifest's `layers` are not all layer numbers"
    return None


def _describe(geometry: KVGeometry | dict[str, Any]) -> str:
    g = geometry.to_dict() if isinstance(geometry, KVGeometry) else geometry
    return (
        f"{counted(g.get('num_layers'), 'layer')} × {counted(g.get('kv_heads'), 'KV head')}"
        f" × head_dim {g.get('head_dim')}"
    )


def check_compatible(vectors: SteeringVectors, loaded: LoadedModel) -> None:
    """Refuse (KVS404/KVS405/KVS407) vectors built for another model, its former weights,
    another tokenizer or chat template.

    >>> check_compatible(load_artifact(path), load_model(plan.model))   # doctest: +SKIP
    """
    manifest = vectors.manifest
    built = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    assert isinstance(built, dict)
    here = loaded.identity
    where = str(manifest.get("artifact_path") or "<artifact>")
    rebuild = "rebuild the vectors for this model with `kvsl build SPEC --force` (the spec's `model =` names it)"
    geometry = loaded.geometry
    shapes = {tuple(t.shape) for t in [*vectors.keys.values(), *vectors.values.values()]}
    stored = manifest.get("geometry")
    if not isinstance(stored, dict):
        stored = {"num_layers": vectors.num_layers, "kv_heads": None, "head_dim": None}
    if (
        vectors.num_layers != geometry.num_layers
        or shapes != {(geometry.kv_heads, geometry.head_dim)}
        or any(layer not in vectors.keys for layer in range(geometry.num_layers))
    ):
        raise KvslError.one(
            "KVS404",
            f"these vectors were built for `{built.get('name', 'another model')}` ({_describe(stored)}), "
            f"`{here.get('name')}` has {_describe(geometry)}",
            Span.whole_file(where),
            help=rebuild,
            exit_code=ExitCode.ENVIRONMENT,
        )
    if not built:
        return  # in-memory vectors without a manifest: the shapes are all we can check
    mismatch = identity_mismatch(built, here)
    if mismatch is None:
        return
    code, what = mismatch
    if code == "KVS405":
        message = f"these vectors were built with another {what} than `{here.get('name')}` uses"
        help = "prompts would be tokenized differently from extraction; " + rebuild
    elif code == "KVS407":
        message = (
            f"these vectors were built for other weights than `{here.get('name')}` has now "
            "(its weight files changed since the build)"
        )
        help = "the model directory was saved again with other weights; " + rebuild
    else:
        message = (
            f"these vectors were built for `{built.get('name')}`, whose {what} differs from "
            f"`{here.get('name')}`"
        )
        help = rebuild
    raise KvslError.one(
        code, message, Span.whole_file(where), help=help, exit_code=ExitCode.ENVIRONMENT
    )


# (identity key, what it fingerprints, the code that refuses a difference), in check order.
_IDENTITY_CHECKS = (
    ("config_sha256", "configuration", "KVS404"),
    ("revision", "weights", "KVS404"),
    ("weights_sha256", "weight files", "KVS407"),
    ("tokenizer_sha256", "tokenizer", "KVS405"),
    ("chat_template_sha256", "chat template", "KVS405"),
)


def identity_mismatch(
    built: Mapping[str, Any], here: Mapping[str, Any]
) -> tuple[str, str] | None:
    """(code, what differs) when two model identities differ where both record a value.

    An entry one side lacks (an artifact from before it was recorded, a model loaded from
    objects) is not compared.

    >>> identity_mismatch({"weights_sha256": "a"}, {"weights_sha256": "b"})
    ('KVS407', 'weight files')
    >>> identity_mismatch({"weights_sha256": "a"}, {"weights_sha256": ""}) is None
    True
    """
    for key, what, code in _IDENTITY_CHECKS:
        if built.get(key) and here.get(key) and built.get(key) != here.get(key):
            return code, what
    return None
