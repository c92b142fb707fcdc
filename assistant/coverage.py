"""Topic coverage of the corpus: which notes cover which topic (for corpus/README.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .currency import REVIEW_YEAR, is_after_review
from .types import Document

TOPICS: dict[str, str] = {
    "resection": "Radical hepatic resection and outcomes",
    "debulking": "Cytoreductive (debulking) surgery and thresholds",
    "two-stage": "Two-stage and combined hepatic procedures",
    "primary-resection": "Resection of the primary with unresectable liver metastases",
    "transplantation": "Liver transplantation (selection, registry outcomes)",
    "ablation": "Radiofrequency and microwave ablation",
    "embolization": "Bland embolization, chemoembolization, drug-eluting beads",
    "radioembolization": "Radioembolization (yttrium-90)",
    "prrt": "Peptide receptor radionuclide therapy",
    "somatostatin-analogues": "Somatostatin analogues (octreotide, lanreotide)",
    "interferon": "Interferon-alpha",
    "everolimus": "Everolimus (RADIANT trials)",
    "sunitinib": "Sunitinib and other tyrosine-kinase inhibitors",
    "chemotherapy": "Cytotoxic chemotherapy",
    "grading": "WHO/ENETS grading and staging",
    "imaging": "Imaging (receptor scintigraphy, 68Ga PET, CT/MRI)",
    "biomarkers": "Biomarkers (chromogranin A, 5-HIAA)",
    "carcinoid-syndrome": "Carcinoid syndrome, heart disease, crisis",
    "guidelines": "Consensus guidelines (ENETS, NANETS, ESMO)",
    "epidemiology": "Epidemiology and prognosis",
    "multidisciplinary": "Multidisciplinary care and quality of life",
}
BEGIN = "<!-- coverage:begin -->"
END = "<!-- coverage:end -->"


def coverage(docs: Iterable[Document]) -> dict[str, list[str]]:
    """Topic slug -> sorted ids of the notes tagged with it (every known topic present)."""
    table: dict[str, list[str]] = {t: [] for t in TOPICS}
    for doc in docs:
        for topic in doc.topics:
            table.setdefault(topic, []).append(doc.id)
    return {t: sorted(ids) for t, ids in table.items()}


def after_review_coverage(docs: Iterable[Document]) -> dict[str, list[str]]:
    """Topic slug -> sorted ids of its notes published after the review (year > REVIEW_YEAR)."""
    docs = list(docs)
    newer = {d.id for d in docs if is_after_review(d.year)}
    return {t: [i for i in ids if i in newer] for t, ids in coverage(docs).items()}


AFTER_COLUMN = f"after {REVIEW_YEAR}"
COLUMNS = ("topic", "what", "notes", "count", AFTER_COLUMN)


def coverage_markdown(docs: Iterable[Document]) -> str:
    """The coverage table as Markdown; the last column lists the notes newer than the review."""
    docs = list(docs)
    newer = after_review_coverage(docs)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for topic, ids in coverage(docs).items():
        notes = ", ".join(f"`{i}`" for i in ids) or "—"
        recent = newer.get(topic, [])
        after = f"{len(recent)}: " + ", ".join(f"`{i}`" for i in recent) if recent else "—"
        lines.append(f"| `{topic}` | {TOPICS.get(topic, '?')} | {notes} | {len(ids)} | {after} |")
    return "\n".join(lines)


def parse_coverage_table(readme: str, column: str = "notes") -> dict[str, list[str]]:
    """Topic -> note ids of one column ('notes' or the after-review one), read back from the
    table between the coverage markers."""
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    at = COLUMNS.index(column)
    out: dict[str, list[str]] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(COLUMNS) and cells[0].startswith("`"):
            out[cells[0].strip("`")] = re.findall(r"`([^`]+)`", cells[at])
    return out


def update_readme(readme_path: Path, docs: Iterable[Document]) -> bool:
    """Rewrite the table between the markers; True when the file changed."""
    text = readme_path.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{BEGIN}\n{coverage_markdown(docs)}\n{END}{tail}"
    if new != text:
        readme_path.write_text(new, encoding="utf-8")
        return True
    return False


if __name__ == "__main__":  # python -m assistant.coverage [CORPUS_DIR]
    import sys

    from .corpus import load_corpus

    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("corpus")
    documents, _ = load_corpus(corpus)
    changed = update_readme(corpus / "README.md", documents)
    print(f"{corpus / 'README.md'}: {'updated' if changed else 'already up to date'}")
