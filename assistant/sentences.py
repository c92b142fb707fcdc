"""Split a chunk into answer units: whole sentences, and list lead-ins joined with their items.

The index embeds these units at build time and the answer stage scores them at question time;
both call `answer_units`, so the n-th vector of a chunk is always the n-th unit of its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .chunk import sentence_spans, split_sentences

MARKUP_RE = re.compile(r"(\*\*|__|`|^\s*([-*+]|\d+[.)])\s+)", re.M)
BULLET_RE = re.compile(r"^([ \t]*)(?:[-*+]|\d+[.)])[ \t]+(.*)$")
MIN_WORDS = 6
# the answer-unit recipe: part of the index's chunking record (`Settings.chunker_config`), since
# the index keeps a vector per unit; raise it when `answer_units` cuts text differently
UNITS_VERSION = 3
MAX_ITEM_WORDS = 25
MAX_ITEMS = 8
MAX_QUOTE_SPANS = 4
# a lead-in whose last word is a verb reads on into its items ("The criteria are: a, b and c")
FLOWING_END = re.compile(
    r"\b(are|is|were|was|include|includes|included|including|comprise|comprises|comprised|"
    r"consist of|consists of|such as|as follows|following|namely|be|been|of|with|by|to|for)$",
    re.I,
)


# ... but a passive one does not: "Eleven studies were included: 662 patients had ..."
PASSIVE_END = re.compile(
    r"\b(is|are|was|were|be|been|being)\s+(\w+ed|made|given|seen|shown)$", re.I
)


@dataclass(frozen=True)
class Unit:
    """One candidate answer sentence of a chunk: its reading text and where it sits."""

    text: str
    start: int  # offsets in the chunk text
    end: int
    is_list: bool = False


def clean(text: str) -> str:
    """A sentence without Markdown emphasis, list markers and line breaks."""
    return re.sub(r"\s+", " ", MARKUP_RE.sub("", text)).strip()


def is_fragment(sentence: str) -> bool:
    """Not a whole sentence: ends in a colon, semicolon or comma (a list's lead-in or one of
    its items), has under six words, or starts mid-sentence."""
    text = re.sub(r"(\s*\[\d+\])+\s*$", "", sentence).strip()
    if not text or text.endswith((":", ";", ",")):
        return True
    if len(text.split()) < MIN_WORDS:
        return True
    first = text.lstrip("\"'([")[:1]
    return not (first.isupper() or first.isdigit())


def _list_after(text: str, pos: int) -> tuple[list[str], int]:
    """The items of a Markdown list that starts on the line after `pos` (only its top level),
    as written (`_item_text` makes phrases of them)."""
    line_start = text.rfind("\n", 0, pos) + 1
    lead = BULLET_RE.match(text[line_start : text.find("\n", pos)])
    lead_depth = len(lead.group(1).expandtabs(4)) if lead else -1
    lines = text[pos:].split("\n")
    offset = pos + len(lines[0]) + 1
    items: list[str] = []
    indent: int | None = None
    end = pos
    for line in lines[1:]:
        match = BULLET_RE.match(line)
        if match is None:
            if line.strip() and items and line.startswith((" ", "\t")) and indent is not None:
                offset += len(line) + 1  # a continuation or deeper line of the last item
                end = offset - 1
                continue
            break
        depth = len(match.group(1).expandtabs(4))
        if depth <= lead_depth or (indent is not None and depth < indent):
            break  # the list ended: a sibling of the lead-in's own item, or a shallower one
        if indent is None:
            indent = depth
        if depth == indent:
            items.append(match.group(2))
        offset += len(line) + 1
        end = offset - 1
    return items, end


# a bold label that is a sentence of its own ("**Grade.** Grade the tumour by ..."): read as a
# label in the answer unit ("Grade: grade the tumour by ...")
LEAD_LABEL_RE = re.compile(r"^\s*(?:(?:[-*+]|\d+[.)])\s+)?\*\*([^*\n]{1,60}?)[.!?]\*\*[ \t]+(?=\S)")
# a sentence pointing to other notes of the corpus says nothing a clinician can use
NAVIGATION_RE = re.compile(r"\bcorpus notes?\b", re.I)
LABEL_RE = re.compile(r"^\*\*([^*]+?)\*\*[:.]?\s*(.*)$")


PARENTHESIS_RE = re.compile(r"\s*\([^()]*\)")


def _item_text(raw: str) -> str:
    """A list item as a phrase: a bold label dropped when text follows it, its parentheses
    left out and the item cut before its first semicolon (the detail stays in the passage)."""
    match = LABEL_RE.match(raw.strip())
    text = match.group(2) if match and match.group(2).strip() else raw
    text = re.split(r";\s", PARENTHESIS_RE.sub("", clean(text)), maxsplit=1)[0]
    return text.strip().rstrip(".;,:")


def _is_statements(item: str) -> bool:
    """A list item of more than one sentence: such a list is read item by item, not joined."""
    return len(split_sentences(clean(item))) > 1


def _lower_first(text: str) -> str:
    """'Overall survival' -> 'overall survival'; acronyms and names ('PRRT', 'Ki-67') stay."""
    word = text.split(" ", 1)[0]
    if word == "A" or (
        len(word) > 1 and word[0].isupper() and word[1:].islower() and word.isalpha()
    ):
        return text[0].lower() + text[1:]
    return text


def _join_items(items: list[str]) -> str:
    parts = [re.sub(r"[;,.]?\s*\b(and|or)$", "", item.strip()).strip() for item in items]
    parts = [_lower_first(p) for p in parts if p]
    if len(parts) == 1:
        return parts[0]
    sep = "; " if any("," in p for p in parts) else ", "
    return sep.join(parts[:-1]) + ("; and " if sep == "; " else " and ") + parts[-1]


def list_sentence(lead: str, items: list[str]) -> str | None:
    """One readable sentence naming the items of a list that `lead` (ending in ':') introduces.

    None when the list is too long or its items are too long to read as one sentence.
    """
    if not items or len(items) > MAX_ITEMS:
        return None
    if any(len(item.split()) > MAX_ITEM_WORDS for item in items):
        return None
    head = lead.rstrip().rstrip(":").rstrip()
    if not head:
        return None
    joined = _join_items(items)
    if not joined:
        return None
    flows = FLOWING_END.search(head) and not PASSIVE_END.search(head)
    sentence = f"{head} {joined}" if flows else f"{head}: {joined}"
    return sentence.rstrip(".;,") + "."


def _open_quote(text: str) -> bool:
    return text.count('"') % 2 == 1 or text.count("\u201c") > text.count("\u201d")


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    """`sentence_spans`, with a quotation that runs over a sentence end kept in one span (up to
    `MAX_QUOTE_SPANS` sentences of one paragraph or list item)."""
    spans = sentence_spans(text)
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        s, e = spans[i]
        j = i
        while (
            _open_quote(text[s:e])
            and j + 1 < len(spans)
            and j - i + 1 < MAX_QUOTE_SPANS
            and "\n" not in text[e : spans[j + 1][0]]
        ):
            j += 1
            e = spans[j][1]
        out.append((s, e))
        i = j + 1
    return out


def answer_units(text: str) -> list[Unit]:
    """The whole sentences of a chunk, and each list lead-in turned into one list sentence.

    Fragments (under six words, starting mid-sentence, headings, lead-ins whose list cannot be
    joined) are left out.
    """
    units: list[Unit] = []
    joined_until = 0  # the end of the last list joined into a list sentence
    for s, e in _quoted_spans(text):
        if s < joined_until:
            continue  # an item of that list (or deeper), already named in its sentence
        raw = text[s:e]
        while raw.lstrip().startswith("#"):  # a heading glued to the sentence below it
            newline = raw.find("\n")
            if newline == -1:
                break
            s += newline + 1
            raw = text[s:e]
        if raw.lstrip().startswith("#"):
            continue
        label = LEAD_LABEL_RE.match(raw)
        sentence = clean(raw[label.end() :] if label else raw)
        if label and not is_fragment(sentence):
            sentence = f"{clean(label.group(1))}: {_lower_first(sentence)}"
        if sentence.endswith(":"):
            line_end = text.find("\n", e)
            if line_end == -1 or text[e:line_end].strip():
                continue
            raw_items, list_end = _list_after(text, line_end)
            if any(_is_statements(item) for item in raw_items):
                continue  # its items are answer units of their own
            joined = list_sentence(sentence, [_item_text(item) for item in raw_items])
            if joined and not is_fragment(joined):
                units.append(Unit(joined, s, max(e, list_end), is_list=True))
                joined_until = list_end
            continue
        if is_fragment(sentence) or NAVIGATION_RE.search(sentence):
            continue
        units.append(Unit(sentence, s, e))
    return units
