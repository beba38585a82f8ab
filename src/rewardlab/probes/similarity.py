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


def nearest_other(texts: Sequence[str], block: int = 2048) -> list[int | None]:
    """For each text, the index of the most similar *other distinct* text (cosine of TF-IDF vectors);
    equal texts never count as neighbours. ``None`` when there is no other distinct text."""
    texts = list(texts)
    n = len(texts)
    if n < 2:
        return [None] * n
    m = tfidf_matrix(texts)
    out: list[int | None] = []
    for start in range(0, n, block):
        sims = (m[start:start + block] @ m.T).toarray()
        for r in range(sims.shape[0]):
            i = start + r
            row = sims[r]
            row[i] = -np.inf
            best = int(np.argmax(row))  # first maximum: lowest index on ties
            while np.isfinite(row[best]) and texts[best] == texts[i]:
                row[best] = -np.inf
                best = int(np.argmax(row))
            out.append(best if np.isfinite(row[best]) else None)
    return out
