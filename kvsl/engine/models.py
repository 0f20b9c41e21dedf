"""Loading causal LMs: the embedded default, any HF id, a local directory or a .gguf file.

All four go through `load_model(ref)`, which returns a `LoadedModel`: the model, its
tokenizer, a fingerprint (`identity`) that artifacts record and check, and the KV-cache
geometry. The pieces live beside it: `kvsl.engine.gguf` (the embedded model's file, GGUF
conversion and its cache under `$KVSL_CACHE_DIR/models/`), `kvsl.engine.identity` (the
fingerprint), `kvsl.engine.kv_geometry` (the cache's shape) and `kvsl.engine.loading`
(coded errors, transformers kept quiet); their public names are re-exported here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kvsl.engine.geometry import KVGeometry, base_model, cache_kwarg, check_kv_cache, kv_geometry
from kvsl.engine.gguf import embedded_gguf_path, load_gguf, model_cache_dir
from kvsl.engine.identity import (
    chat_template_sha256,
    config_sha256,
    ensure_pad_token,
    identity_on_disk,
    model_identity,
    tokenizer_sha256,
)
from kvsl.engine.loading import load_pretrained, model_error, quiet_transformers
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.models import model_ref
from kvsl.lang.plan import ModelRef
from kvsl.lang.source import Span


@dataclass
class LoadedModel:
    """A model ready for extraction and steering.

    `identity` has the string keys `name`, `kind`, `architecture`, `revision` (a hub commit,
    `gguf-sha256:<hex>` for GGUF files, "" when unknown), `weights_sha256` (a local
    directory's weight files, `kvsl.engine.fingerprint`; "" otherwise: the revision covers
    them), `config_sha256`, `tokenizer_sha256` and `chat_template_sha256`.
    """

    model: Any  # a transformers PreTrainedModel (…ForCausalLM), in eval mode
    tokenizer: Any  # its PreTrainedTokenizer(Fast)
    ref: ModelRef
    identity: dict[str, str]
    geometry: KVGeometry
    load_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what happened while loading

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Where inputs go: the model's device, or under a device map its first GPU (else
        the CPU; accelerate's hooks move each layer's inputs to that layer's device)."""
        device_map = getattr(self.model, "hf_device_map", None)
        if device_map and len(set(device_map.values())) > 1:
            gpus = sorted(v for v in device_map.values() if isinstance(v, int))
            return torch.device(f"cuda:{gpus[0]}") if gpus else torch.device("cpu")
        return next(self.model.parameters()).device


def resolve_ref(name_or_path: str) -> ModelRef:
    """A ModelRef for what a user typed: an embedded name, a .gguf path, a directory, a hub id.

    The front end's one rule (`kvsl.lang.models.model_ref`), with paths relative to the
    working directory, so `--model X` means what `model = "X"` means in a spec there.

    >>> resolve_ref("smollm2-135m").kind
    'embedded'
    """
    return model_ref(name_or_path, os.getcwd())


def load_model(
    ref: ModelRef,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> LoadedModel:
    """Load the model a plan names, with its tokenizer, identity and KV geometry.

    `device` None keeps the model on the CPU; `"auto"` picks CUDA when available.
    `device_map` (transformers' `"auto"`, `"balanced"`, ... or a {module: device} dict,
    devices including "cpu" and "disk") spreads the layers instead of `device`; offloaded
    weights go to `$KVSL_CACHE_DIR/offload/` (see `kvsl.engine.placement`).

    >>> loaded = load_model(resolve_ref("smollm2-135m"))  # doctest: +SKIP
    >>> loaded.geometry                                    # doctest: +SKIP
    KVGeometry(num_layers=30, kv_heads=3, head_dim=64)
    """
    started = time.perf_counter()
    notes: list[str] = []
    placement: dict[str, Any] = {}
    if device_map is not None:
        from kvsl.engine.placement import placement_kwargs

        placement = placement_kwargs(device_map)
    model, tokenizer, revision, weights = _load_weights(ref, dtype, placement, notes)
    device = resolve_device(device) if device_map is None else None
    if device is not None:
        model = model.to(device)
    loaded = loaded_from_objects(
        model,
        tokenizer,
        ref,
        revision=revision,
        weights_sha256=weights,
        started=started,
        notes=notes,
    )
    _warn_without_chat_template(loaded)
    return loaded


def _warn_without_chat_template(loaded: LoadedModel) -> None:
    """KVS470 on stderr (and in the notes) when the model's tokenizer has no chat template."""
    import sys

    from kvsl.engine.prompting import chat_template_warning
    from kvsl.lang.render import render_diagnostics

    warning = chat_template_warning(loaded.tokenizer, loaded.ref.location or loaded.ref.name)
    if warning is not None:
        loaded.notes.append(warning.message)
        print(render_diagnostics([warning]), file=sys.stderr, flush=True)


def _load_weights(
    ref: ModelRef, dtype: torch.dtype, placement: dict[str, Any], notes: list[str]
) -> tuple[Any, Any, str, str]:
    """(model, tokenizer, revision, weights sha256) of `ref`, by its kind; KVS301 if absent."""
    if ref.kind in ("embedded", "gguf"):
        if ref.kind == "embedded":
            path = embedded_gguf_path(ref.name, ref)
        else:
            path = Path(ref.location).expanduser()
            if not path.is_file():
                raise model_error(
                    "KVS301",
                    f"the GGUF file `{ref.location}` does not exist",
                    ref,
                    "fix the model path (`model =` in the spec, relative to the spec file; "
                    "or `--model`)",
                )
        model, tokenizer, revision = load_gguf(path, ref, dtype, notes, placement)
        return model, tokenizer, revision, ""
    if ref.kind == "directory":
        path = Path(ref.location).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            if path.is_dir():
                what = "is not a model directory (no config.json)"
            else:
                what = "is a file, not a model directory" if path.exists() else "does not exist"
            raise model_error(
                "KVS301",
                f"model directory `{ref.location}` {what}",
                ref,
                "fix the model path (`model =` in the spec, or `--model`), or save a model "
                "there with `save_pretrained`",
            )
        from kvsl.engine.fingerprint import weights_sha256

        weights = weights_sha256(path)
        model, tokenizer = load_pretrained(
            str(path), dtype, ref, local_files_only=True, **placement
        )
        return model, tokenizer, "", weights
    model, tokenizer = load_pretrained(ref.location or ref.name, dtype, ref, **placement)
    revision = str(getattr(model.config, "_commit_hash", None) or "")
    return model, tokenizer, revision, ""


def resolve_device(device: str | torch.device | None, where: str = "<command line>") -> str | None:
    """The torch device a `--device` value names, checked here (KVS309), None for the CPU.

    `auto` picks CUDA when available. Checked before loading, so a typo costs no load.

    >>> resolve_device("cpu") is None
    True
    """
    if device is None:
        return None
    text = str(device).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else None
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is not None and parsed.type == "cpu":
        return None
    available = parsed is not None and (
        (
            parsed.type == "cuda"
            and torch.cuda.is_available()
            and (parsed.index or 0) < torch.cuda.device_count()
        )
        or (parsed.type == "mps" and torch.backends.mps.is_available())
    )
    if not available:
        # Offer only devices this machine has: "use `cuda`" on a CPU-only machine misleads.
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        hint = (
            f"this machine has {count} CUDA device(s): use `auto`, `cpu`, `cuda` or "
            f"`cuda:0`..`cuda:{count - 1}`"
            if count
            else "this machine has no CUDA device: use `auto` (the CPU here) or `cpu`"
        )
        raise KvslError.one(
            "KVS309",
            f"device `{device}` is not available",
            Span.whole_file(where),
            help=hint,
            exit_code=ExitCode.USAGE,
        )
    return str(parsed)


def loaded_from_objects(
    model: Any,
    tokenizer: Any,
    ref: ModelRef,
    *,
    revision: str = "",
    weights_sha256: str = "",
    started: float | None = None,
    notes: list[str] | None = None,
) -> LoadedModel:
    """Wrap an already loaded HF model and tokenizer (checks the KV cache like `load_model`).

    >>> loaded = loaded_from_objects(model, tokenizer, ModelRef("mine", "directory", "/m"))  # doctest: +SKIP
    """
    model.eval()
    geometry = check_kv_cache(model, ref)
    ensure_pad_token(tokenizer)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        ref=ref,
        identity=model_identity(model, tokenizer, ref, revision, weights_sha256),
        geometry=geometry,
        load_seconds=0.0 if started is None else time.perf_counter() - started,
        notes=notes or [],
    )


def precision_dtype(precision: str) -> torch.dtype:
    """`fp32` → torch.float32, `bf16` → torch.bfloat16."""
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]


__all__ = [
    "KVGeometry",
    "LoadedModel",
    "base_model",
    "cache_kwarg",
    "chat_template_sha256",
    "check_kv_cache",
    "config_sha256",
    "embedded_gguf_path",
    "ensure_pad_token",
    "identity_on_disk",
    "kv_geometry",
    "load_model",
    "loaded_from_objects",
    "model_cache_dir",
    "model_identity",
    "precision_dtype",
    "quiet_transformers",
    "resolve_device",
    "resolve_ref",
    "tokenizer_sha256",
]
