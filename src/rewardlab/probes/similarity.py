"""Lexical nearest neighbours of prompts: TF-IDF cosine over lower-cased word tokens.

Used by the off-topic probe and the OffsetBias augmentation to find, for each prompt, the most similar
*different* prompt of the same data (the off-topic response answers that one). Deterministic: ties go to
the lowest index. Sparse, in row blocks, so tens of thousands of prompts fit in memory.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from scipy import sparse

_WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def tfidf_matrix(texts: Sequence[str]) -> sparse.csr_matrix:
    """Rows: L2-normalised TF-IDF vectors (idf = log((1 + n) / (1 + df)) + 1, as is usual)."""
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        counts: dict[int, int] = {}
        for tok in tokens(text):
            j = vocab.setdefault(tok, len(vocab))
            counts[j] = counts.get(j, 0) + 1
        rows += [i] * len(counts)
        cols += list(counts)
        vals += list(counts.values())
    m = sparse.csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)), shape=(len(texts), max(1, len(vocab))))
    df = np.bincount(m.indices, minlength=m.shape[1])
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    m = m.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.diags(1.0 / norms) @ m


def nearest_other(texts: Sequence[str], cells: int = 16_000_000) -> list[int | None]:
    """For each text, the index of the most similar *other distinct* text (cosine of TF-IDF vectors);
    equal texts never count as neighbours. ``None`` when there is no other distinct text. Rows are compared
    in blocks of at most ``cells`` similarities (128 MB of float64)."""
    texts = list(texts)
    n = len(texts)
    if n < 2:
        return [None] * n
    block = max(1, cells // n)
    m = tfidf_matrix(texts)
    group: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        group.setdefault(t, []).append(i)
    out: list[int | None] = []
    for start in range(0, n, block):
        sims = (m[start : start + block] @ m.T).toarray()
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        for r in rows:  # equal texts are not neighbours either (rare: only rows with a duplicate)
            same = group[texts[start + r]]
            if len(same) > 1:
                sims[r, same] = -np.inf
        best = np.argmax(sims, axis=1)  # the first maximum: lowest index on ties
        ok = np.isfinite(sims[rows, best])
        out += [int(b) if k else None for b, k in zip(best, ok)]
    return out
