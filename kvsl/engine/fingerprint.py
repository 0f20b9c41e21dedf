"""Fingerprints of model weight files, hashed once and then remembered by their file status.

An artifact's model identity must cover the weights: a local model directory re-saved
with other weights (same config, same tokenizer) is another model, and its vectors are
refused (KVS407). The fingerprint of a directory is the sha256 over its weight files'
names and full sha256s; a file is hashed in full once, then its digest is kept in a small
JSON cache keyed by the file's resolved path and status (size, mtime_ns, ctime_ns, inode),
so an unchanged model costs a few `stat` calls per run, not a read of every byte. Any
write to a file changes its mtime or ctime (ctime cannot be set back by `touch` or `cp -p`),
so a changed file is always hashed again.

The cache lives beside converted models (`kvsl.engine.gguf.model_cache_dir()`, file
`kvsl-fingerprints.json`). It is written atomically; when it cannot be written the
digests are simply computed again next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from kvsl.base.atomic import atomic_path
from kvsl.base.hashing import file_sha256
from kvsl.base.jsonl import loads
from kvsl.base.locations import cache_dir

CACHE_FILE = "kvsl-fingerprints.json"
# Files that hold weights in the formats transformers saves or loads.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack")
_MAX_ENTRIES = 4096  # the cache forgets its oldest entries beyond this


def _status(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _cache_path() -> Path:
    return cache_dir("models") / CACHE_FILE  # beside the converted models


def _read_cache(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, entries: dict[str, dict[str, object]]) -> None:
    if len(entries) > _MAX_ENTRIES:
        entries = dict(list(entries.items())[-_MAX_ENTRIES:])
    with contextlib.suppress(OSError):  # a cache, not data: next time hashes again
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(entries, sort_keys=True), encoding="utf-8")


def cached_file_sha256(paths: list[Path]) -> dict[Path, str]:
    """The sha256 of each file, from the cache where the file's status is unchanged.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.bin"
    >>> _ = p.write_bytes(b"abc")
    >>> cached_file_sha256([p])[p][:12]
    'ba7816bf8f01'
    """
    cache_file = _cache_path()
    cache = _read_cache(cache_file)
    digests: dict[Path, str] = {}
    changed = False
    for path in paths:
        key = os.path.realpath(path)  # not Path.resolve(): it raises on a link loop
        status = _status(path)
        entry = cache.get(key)
        if isinstance(entry, dict) and entry.get("status") == status:
            digests[path] = str(entry["sha256"])
            continue
        digest = file_sha256(path)
        # Hashed a moving file? Then its status changed meanwhile: do not remember it.
        if _status(path) == status:
            cache.pop(key, None)
            cache[key] = {"status": status, "sha256": digest}
            changed = True
        digests[path] = digest
    if changed:
        _write_cache(cache_file, cache)
    return digests


def weight_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The weight files of a model directory, by name."""
    root = Path(folder)
    return sorted(
        (p for p in root.iterdir() if p.name.endswith(WEIGHT_SUFFIXES) and p.is_file()),
        key=lambda p: p.name,
    )


def weights_sha256(folder: str | os.PathLike[str]) -> str:
    """One fingerprint of every weight file of a model directory ("" when it has none,
    or when they cannot be read).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> weights_sha256(d)
    ''
    >>> _ = (d / "model.safetensors").write_bytes(b"weights")
    >>> len(weights_sha256(d))
    64
    """
    try:
        files = weight_files(folder)
        digests = cached_file_sha256(files) if files else {}
    except OSError:  # unreadable: loading the model reports it with its own code
        return ""
    if not files:
        return ""
    combined = hashlib.sha256()
    for path in files:
        combined.update(f"{path.name}:{digests[path]};".encode())
    return combined.hexdigest()
