"""Re-order candidates: no source fills more than its share of the top ranks."""

from __future__ import annotations

from collections.abc import Callable, Collection

from .retrieve import Ranked


def diversify(
    ranked: Ranked,
    doc_of_row: Callable[[int], str],
    max_per_source: int,
    exempt: Collection[str] = (),
    keep_above: float = 1.0,
) -> Ranked:
    """The same rows, with no source holding more than `max_per_source` places before every
    other candidate has had its place: a source's further rows move down, in their order.

    Sources in `exempt` (named by the question) keep all their places, and so does a row
    scoring at least `keep_above` times the best score (1.0: only ties with the best).
    """
    if max_per_source <= 0 or not ranked:
        return list(ranked)
    top = ranked[0][1]
    kept: Ranked = []
    deferred: Ranked = []
    counts: dict[str, int] = {}
    for row, score in ranked:
        doc = doc_of_row(row)
        strong = top > 0 and score >= keep_above * top
        if doc in exempt or strong or counts.get(doc, 0) < max_per_source:
            counts[doc] = counts.get(doc, 0) + 1
            kept.append((row, score))
        else:
            deferred.append((row, score))
    return kept + deferred
