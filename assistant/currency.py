"""How current the evidence is: the review year, after-review marks, the corpus snapshot stamp.

The bundled corpus was built around the 2012 review by Rossi et al.; a source published after
that year is evidence the review could not weigh, and readers see it marked as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REVIEW_YEAR = 2012
"""The year of the review the corpus is built around (Rossi et al., J Gastrointest Surg 2012)."""

AFTER_REVIEW_LABEL = f"after the {REVIEW_YEAR} review"
AFTER_REVIEW_NOTE = (
    f"(after {REVIEW_YEAR}) marks evidence published after the {REVIEW_YEAR} review "
    "the corpus is built around"
)


def is_after_review(year: Any) -> bool:
    """Whether a publication year is later than the review's (unknown years are not)."""
    try:
        return int(year) > REVIEW_YEAR
    except (TypeError, ValueError):
        return False


def year_label(source: Mapping[str, Any], short: bool = False) -> str:
    """'2017 (after the 2012 review)', short '2017 (after 2012)'; '2009'; '—' without a year."""
    year = source.get("year")
    if year in (None, ""):
        return "—"
    if not is_after_review(year):
        return str(year)
    return f"{year} (after {REVIEW_YEAR})" if short else f"{year} ({AFTER_REVIEW_LABEL})"


def corpus_stamp(
    manifest: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The snapshot an answer comes from: corpus fingerprint, newest source year, source count,
    and the review year that `after_review` marks are measured against."""
    years = [int(s["year"]) for s in sources.values() if isinstance(s.get("year"), int)]
    return {
        "fingerprint": str(manifest.get("corpus", {}).get("fingerprint") or ""),
        "newest_source_year": max(years) if years else None,
        "n_sources": len(sources),
        "review_year": REVIEW_YEAR,
    }


def describe_stamp(stamp: Mapping[str, Any], count: bool = True) -> str:
    """'corpus snapshot 1a2b3c4d5e6f · 105 sources · newest source 2024' (banners, footers)."""
    fingerprint = str(stamp.get("fingerprint") or "unknown")[:12]
    parts = [f"corpus snapshot {fingerprint}"]
    if count:
        parts.append(f"{stamp.get('n_sources', 0)} sources")
    if stamp.get("newest_source_year") is not None:
        parts.append(f"newest source {stamp['newest_source_year']}")
    return " · ".join(parts)
