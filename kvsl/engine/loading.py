"""What every way of loading a model shares: its coded errors, transformers kept quiet,
notes said on stderr, and `from_pretrained` with its failures turned into diagnostics."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.plan import ModelRef
from kvsl.lang.source import Span


def model_error(code: str, message: str, ref: ModelRef | None, help: str | None) -> KvslError:
    where = ref.location if ref is not None else "<model>"
    return KvslError.one(
        code, message, Span.whole_file(where), help=help, exit_code=ExitCode.ENVIRONMENT
    )


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


def say(message: str, notes: list[str]) -> None:
    notes.append(message)
    print(f"kvsl: {message}", file=sys.stderr, flush=True)


def load_pretrained(
    source: str, dtype: torch.dtype, ref: ModelRef, **kwargs: Any
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
        # Any exception: corrupt files surface as the readers' own types (safetensors'
        # SafetensorError for a truncated header, struct.error, ...), not only OSError.
        except Exception as err:
            text = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
            unsupported = isinstance(err, ValueError | KeyError) and (
                "Unrecognized configuration" in text
                or "does not support" in text
                or "not supported" in text
                or isinstance(err, KeyError)
            )
            if unsupported:
                raise model_error(
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
            raise model_error(
                "KVS302", f"model `{ref.name}` could not be loaded: {text}", ref, help
            ) from None
    model.eval()
    return model, tokenizer
