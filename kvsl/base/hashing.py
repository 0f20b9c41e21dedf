"""Content hashes of files (models, trace files, benchmark files) and of texts."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB chunks; `OSError` if it cannot be read.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = target.write_bytes(b"abc")
    >>> file_sha256(target)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    """Hex sha256 of `text` as UTF-8, for the hashes of plans, manifests and settings.

    A path holding bytes that are not UTF-8 reaches Python as surrogate escapes (os.fsdecode
    of `b"d\\xff"` is `"d\\udcff"`); a strict encode raised UnicodeEncodeError on it, so
    every command on a spec in such a folder crashed. `surrogateescape` hashes those
    characters as the original bytes, and any other text exactly as before.

    >>> text_sha256("abc")[:16]
    'ba7816bf8f01cfea'
    >>> text_sha256("d\\udcff") == hashlib.sha256(b"d\\xff").hexdigest()
    True
    """
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
