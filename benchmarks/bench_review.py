"""How well grader review groups written answers and finds copied code, on labelled data (benchmarks/review_corpus.py).

    python -m benchmarks.bench_review

Grouping: adjusted Rand index and purity (each group counted as its commonest label) and inverse purity (each label
counted in the group holding most of it: how whole each kind of answer stays), at several thresholds, the
default marked. Code: precision and recall of the pairs shown, against the pairs known to be copies, per threshold.
"""

from __future__ import annotations

import itertools
from collections import Counter
from math import comb

from grader.config import ANSWER_GROUP_SIMILARITY, CODE_SIMILARITY
from grader.review.fingerprints import FunctionCode, fingerprints, normalised_tokens, similar_pairs

from .review_corpus import ANSWERS, HELD_OUT, COPIES, LOO_LOSS, MASKED_SOFTMAX, NW_REGRESS, TEMPLATES


def adjusted_rand(labels: list, clusters: list) -> float:
    """Hubert and Arabie's adjusted Rand index of two partitions of the same items."""
    table = Counter(zip(labels, clusters))
    index = sum(comb(n, 2) for n in table.values())
    rows = sum(comb(n, 2) for n in Counter(labels).values())
    cols = sum(comb(n, 2) for n in Counter(clusters).values())
    expected = rows * cols / comb(len(labels), 2)
    best = (rows + cols) / 2
    return 1.0 if best == expected else (index - expected) / (best - expected)


def purity(labels: list, clusters: list) -> float:
    by_cluster: dict = {}
    for label, c in zip(labels, clusters):
        by_cluster.setdefault(c, Counter())[label] += 1
    return sum(c.most_common(1)[0][1] for c in by_cluster.values()) / len(labels)


def grouping_figures(threshold: float, answers: list[tuple[str, str]] = ANSWERS) -> tuple[float, float, float, int]:
    from grader.review.grouping import group_answers

    labels = [label for label, _ in answers]
    clusters = [0] * len(answers)
    groups = group_answers([text for _, text in answers], threshold)
    for number, group in enumerate(groups):
        for member in group.members:
            clusters[member] = number
    return adjusted_rand(labels, clusters), purity(labels, clusters), purity(clusters, labels), len(groups)


def code_versions() -> list[tuple[str, FunctionCode]]:
    """(author label, version) for every original and copy; a copy's submission name says whose it copies."""
    versions = []
    for function, originals in (("nw_regress", NW_REGRESS), ("loo_loss", LOO_LOSS), ("masked_softmax", MASKED_SOFTMAX)):
        for n, (label, source) in enumerate(originals):
            versions.append((label, FunctionCode(f"{label}{n}", function, 0, source, source,
                                                 fingerprints(normalised_tokens(source)))))
    for n, (label, source) in enumerate(COPIES):
        function = next(f for f in TEMPLATES if f"def {f}(" in source)
        versions.append((label, FunctionCode(f"copy{n}-of-{label}", function, 0, source, source,
                                             fingerprints(normalised_tokens(source)))))
    return versions


def code_figures(threshold: float) -> tuple[float, float, int, int]:
    versions = code_versions()
    copied = {frozenset((a.submission, b.submission)) for (la, a), (lb, b) in itertools.combinations(versions, 2)
              if a.function == b.function and la == lb}
    shown = set()
    for function, template in TEMPLATES.items():
        mine = [v for _, v in versions if v.function == function]
        template_prints = fingerprints(normalised_tokens(template))
        shown |= {frozenset((p.a.submission, p.b.submission)) for p in similar_pairs(mine, template_prints, threshold)}
    hits = len(shown & copied)
    precision = hits / len(shown) if shown else 1.0
    return precision, hits / len(copied), len(shown), len(copied)


def code_margin() -> tuple[float, float]:
    """The highest similarity of an independent pair and the lowest of a copied one (template subtracted)."""
    versions = code_versions()
    label = {v.submission: la for la, v in versions}
    independent, copied = [0.0], [1.0]
    for function, template in TEMPLATES.items():
        mine = [v for _, v in versions if v.function == function]
        for pair in similar_pairs(mine, fingerprints(normalised_tokens(template)), threshold=0.0, min_prints=0):
            (copied if label[pair.a.submission] == label[pair.b.submission] else independent).append(pair.similarity)
    return max(independent), min(copied)


def main() -> None:
    print(f"Written answers: {len(ANSWERS)} in {len({l.split('-')[0] for l, _ in ANSWERS})} languages, "
          f"{len({l for l, _ in ANSWERS})} labelled groups")
    print(f"{'threshold':>10} {'groups':>7} {'ARI':>6} {'purity':>7} {'inverse purity':>15}")
    for threshold in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
        ari, pure, inverse, count = grouping_figures(threshold)
        mark = "  <- default" if abs(threshold - ANSWER_GROUP_SIMILARITY) < 1e-9 else ""
        print(f"{threshold:>10.2f} {count:>7} {ari:>6.3f} {pure:>7.3f} {inverse:>15.3f}{mark}")
    ari, pure, inverse, count = grouping_figures(ANSWER_GROUP_SIMILARITY, HELD_OUT)
    print(f"Held out (a second question, not used to choose the threshold): {len(HELD_OUT)} answers, "
          f"{len({l for l, _ in HELD_OUT})} labelled groups, at {ANSWER_GROUP_SIMILARITY:g}: {count} groups, "
          f"ARI {ari:.3f}, purity {pure:.3f}, inverse purity {inverse:.3f}")
    versions = code_versions()
    print(f"\nCode: {len(NW_REGRESS) + len(LOO_LOSS) + len(MASKED_SOFTMAX)} solutions of {len(TEMPLATES)} functions, "
          f"{len(COPIES)} disguised "
          f"copies, {len([1 for (la, a), (lb, b) in itertools.combinations(versions, 2) if a.function == b.function])}"
          " pairs")
    print(f"{'threshold':>10} {'shown':>6} {'copied':>7} {'precision':>10} {'recall':>7}")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        precision, recall, shown, copied = code_figures(threshold)
        mark = "  <- default" if abs(threshold - CODE_SIMILARITY) < 1e-9 else ""
        print(f"{threshold:>10.2f} {shown:>6} {copied:>7} {precision:>10.3f} {recall:>7.3f}{mark}")
    highest, lowest = code_margin()
    print(f"Most similar independent pair: {highest:.3f}; least similar copied pair: {lowest:.3f}")


if __name__ == "__main__":
    main()
