"""Written answers grouped by similarity, so that an instructor marks each kind of answer once.

Each answer becomes a TF-IDF vector of its character n-grams (2 to 4 characters of the normalised text: case,
width, punctuation and spacing folded), and answers are joined by average-linkage agglomerative clustering while
the mean cosine between two groups stays at or above a threshold. Character n-grams need no word segmentation,
so Chinese, Japanese and Korean answers group as English ones do, and a typo costs a few n-grams, not a word.

NumPy only: scikit-learn's TfidfVectorizer and AgglomerativeClustering do the same in three calls, but would bring
scikit-learn, joblib and threadpoolctl into the grader's install for some sixty lines; a class is a few hundred
answers per question at most, so the dense similarity matrix is small.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..config import ANSWER_GROUP_SIMILARITY

NGRAM_SIZES = (2, 3, 4)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The text as compared: NFKC (full-width letters, compatibility forms), case-folded, punctuation and
    symbols dropped, whitespace collapsed; what Markdown adds (emphasis, code ticks, bullets) goes with them."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    return _SPACES.sub(" ", kept).strip()


def ngrams(text: str) -> Counter:
    """The character n-grams of a normalised text, padded with a space so that words' edges count."""
    padded = f" {text} "
    return Counter(padded[i:i + n] for n in NGRAM_SIZES for i in range(len(padded) - n + 1))


def tfidf(texts: list[str]) -> np.ndarray:
    """Rows of L2-normalised TF-IDF weights (sublinear term frequency, smoothed IDF), one per text."""
    counts = [ngrams(normalise(t)) for t in texts]
    vocabulary: dict[str, int] = {}
    for c in counts:
        for gram in c:
            vocabulary.setdefault(gram, len(vocabulary))
    matrix = np.zeros((len(texts), max(len(vocabulary), 1)))
    for row, c in enumerate(counts):
        for gram, n in c.items():
            matrix[row, vocabulary[gram]] = 1 + math.log(n)
    documents = (matrix > 0).sum(axis=0)
    matrix *= np.log((1 + len(texts)) / (1 + documents)) + 1
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def similarity_matrix(texts: list[str]) -> np.ndarray:
    vectors = tfidf(texts)
    similarity = vectors @ vectors.T
    # Texts equal once normalised are the same answer, whatever rounding says (an empty one included).
    keys = [normalise(t) for t in texts]
    for i, key in enumerate(keys):
        for j in range(i + 1, len(keys)):
            if keys[j] == key:
                similarity[i, j] = similarity[j, i] = 1.0
    np.fill_diagonal(similarity, 1.0)
    return similarity


def cluster(similarity: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage agglomerative clustering: merge the two closest groups while their mean similarity is at
    least ``threshold``. Groups as lists of indices, each in input order."""
    n = len(similarity)
    groups: dict[int, list[int]] = {i: [i] for i in range(n)}
    linkage = similarity.astype(float).copy()
    np.fill_diagonal(linkage, -np.inf)
    while len(groups) > 1:
        flat = int(np.argmax(linkage))
        a, b = divmod(flat, n)
        if linkage[a, b] < threshold:
            break
        size_a, size_b = len(groups[a]), len(groups[b])
        # Lance-Williams update for average linkage: the merged group's mean similarity to every other group.
        merged = (size_a * linkage[a] + size_b * linkage[b]) / (size_a + size_b)
        linkage[a], linkage[:, a] = merged, merged
        linkage[a, a] = -np.inf
        linkage[b, :], linkage[:, b] = -np.inf, -np.inf
        groups[a] = sorted(groups[a] + groups.pop(b))
    return list(groups.values())


@dataclass(frozen=True)
class AnswerGroup:
    """Answers alike enough to be marked together: indices into the answers given, the most typical first."""

    members: tuple[int, ...]
    cohesion: float  # the mean similarity between the group's members (1.0 for one answer, or identical ones)


def group_answers(texts: list[str], threshold: float = ANSWER_GROUP_SIMILARITY) -> list[AnswerGroup]:
    """The answers grouped, largest group first (ties: the group of the earliest answer first)."""
    if not texts:
        return []
    similarity = similarity_matrix(texts)
    result = []
    for members in cluster(similarity, threshold):
        block = similarity[np.ix_(members, members)]
        typical = block.mean(axis=1)
        ordered = tuple(m for _, m in sorted(zip(-typical, members)))
        pairs = len(members) * (len(members) - 1)
        cohesion = float((block.sum() - len(members)) / pairs) if pairs else 1.0
        result.append(AnswerGroup(ordered, round(cohesion, 4)))
    return sorted(result, key=lambda g: (-len(g.members), min(g.members)))
