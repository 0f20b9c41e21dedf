"""A model's fingerprint, which artifacts record and check (see `LoadedModel.identity`).

Hashes of the config (without the entries that change on save and reload), the
tokenizer's vocabulary and special tokens, and the chat template; `identity_on_disk`
reads what it can of them without loading the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvsl.base.hashing import text_sha256
from kvsl.engine.gguf import embedded_gguf_path
from kvsl.engine.loading import quiet_transformers
from kvsl.lang.plan import ModelRef

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


def config_sha256(config: Any) -> str:
    """Hash of the model config without entries that change on save/reload."""
    data = {k: v for k, v in config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    return text_sha256(json.dumps(data, sort_keys=True, default=str))


def tokenizer_sha256(tokenizer: Any) -> str:
    """Hash of the vocabulary and special tokens (stable across save/reload)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    special = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    return text_sha256(json.dumps({"vocab": vocab, "special": special}, ensure_ascii=False))


def chat_template_sha256(tokenizer: Any) -> str:
    """Hash of the chat template ("" hashed when the tokenizer has none)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = json.dumps(template, sort_keys=True)
    return text_sha256(str(template))


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


def ensure_pad_token(tokenizer: Any) -> None:
    """Give a tokenizer without a pad token its end-of-sequence token as one (in place).

    Batching needs a pad token; it is never attended to. Done before the tokenizer is
    fingerprinted, by every path that fingerprints one, so the hashes agree.
    """
    if getattr(tokenizer, "pad_token_id", None) is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


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
