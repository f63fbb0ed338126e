"""What a language model's reply means for ``llm=openai`` (:mod:`mcbench.llm`): the word list parsed out of it
(:func:`parse_word_list`), why it cannot serve as reference words (:func:`reply_problem`), and the words of the
question (:func:`object_of`, :func:`plural`)."""

from __future__ import annotations

import json
import re

from mcbench.data.base import Aspect, MultiViewDataset

_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*•·+▪◦‣–—]+|\(?\d{1,3}[.)\]:]|\(?[a-z][.)](?=\s)|#+)\s*")
_PAREN = re.compile(r"\s*[(\[][^()\[\]]*[)\]]")
_QUOTES = "\"'`“”‘’«»„"
_JUNK = {"etc", "etc.", "and more", "more", "others", "and others", "and so on", "e.g.", "i.e.", "other", "n/a"}
_SPLIT = re.compile(r"[,;，、\t]")


def _clean_item(item: str) -> str:
    item = item.strip().replace("**", "").replace("__", "")
    item = _PAREN.sub("", item)  # "apples (red or green)" -> "apples"
    item = re.sub(r"^(?:and|or|&)\s+", "", item.strip(), flags=re.IGNORECASE)
    item = re.sub(r"(?:\s*(?:etc\.?|\.\.\.|…))+$", "", item.strip(), flags=re.IGNORECASE)
    item = item.strip().strip(_QUOTES).strip()
    item = item.rstrip(".!?:;").strip().strip(_QUOTES).strip()
    return re.sub(r"\s+", " ", item).lower()


def parse_word_list(reply: str | None, max_item_words: int = 3) -> list[str]:
    """The words of a model's list reply, lower-cased, de-duplicated, in order.

    Accepts comma/semicolon/newline separated lists, numbered or bulleted lists (``1.``, ``2)``, ``-``, ``*``),
    a JSON array, Markdown emphasis and code fences, quotes, "and"/"or" before the last item, trailing periods,
    "etc.", and a preamble ("Here are some common colors:"). An item with more than ``max_item_words`` words, or
    ending in "!" or "?", is taken for a sentence and dropped. Returns [] when nothing list-like is found.
    """
    if not reply or not reply.strip():
        return []
    text = reply.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, list):
            text = "\n".join(str(x) for x in data)
    lines = [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip() and not _FENCE.match(ln)]
    raw: list[str] = []
    for line in lines:
        bullet = _BULLET.match(line)
        body = line[bullet.end():] if bullet and bullet.end() > 0 else line.strip()
        body = body.replace("**", "").replace("__", "").strip()
        if not body or (body.endswith(":") and not _SPLIT.search(body)):
            continue  # a heading or preamble line ("Here are the most common colors:")
        if bullet and bullet.end() > 0 and not _SPLIT.search(body):
            # "1. Apples - crisp and sweet" / "- Red: the colour of ..." -> the head only
            body = re.split(r"\s+[-–—]\s+|:\s", body, maxsplit=1)[0]
        elif ":" in body:
            head, tail = body.rsplit(":", 1)
            body = tail if _SPLIT.search(tail) or len(head.split()) > 2 else body
        pieces = [p for p in _SPLIT.split(body)]
        last = pieces[-1]
        if re.search(r"\s(?:and|or|&)\s", last, flags=re.IGNORECASE) and (len(pieces) > 1 or len(lines) == 1):
            pieces = pieces[:-1] + re.split(r"\s(?:and|or|&)\s", last, maxsplit=1, flags=re.IGNORECASE)
        raw.extend(pieces)
    words: list[str] = []
    for piece in raw:
        stripped = piece.strip()
        if stripped.endswith(("!", "?")):
            continue
        item = _clean_item(stripped)
        if not item or item in _JUNK or len(item.split()) > max_item_words:
            continue
        if item not in words:
            words.append(item)
    return words


#: Phrases of a model that declines or cannot answer ("Sorry, I can't help with that, as an AI.").
_REFUSAL = re.compile(
    r"\b(?:sorry|apologi[sz]e|as an ai\b|an ai (?:language )?model|a language model|i(?:'|’| a)m (?:not able|unable)|"
    r"i am (?:not able|unable)|i can(?:not|'t|’t)\b|i (?:won't|won’t|will not)\b|i do(?:n't|n’t| not) (?:know|have)|"
    r"unable to (?:help|assist|answer|provide|comply)|(?:can't|can’t|cannot) (?:help|assist|answer|provide|comply)|"
    r"(?:content|usage) polic(?:y|ies)|against (?:my|the) (?:guidelines|polic))",
    re.IGNORECASE,
)
#: Longest plausible reference word or phrase, in characters.
MAX_WORD_CHARS = 40


def reply_problem(reply: str | None, words: list[str], k: int) -> str | None:
    """Why a model's reply cannot serve as an aspect's reference words, or None when it can.

    A reply must hold a list (``words``, parsed from it), must not read as a refusal (a refusal parses into
    words like ``sorry`` and ``as an ai``), must list at least ``k`` words (the aspect's class count: fewer
    cannot name every cluster) and its items must look like words: some letter or digit, at most
    ``MAX_WORD_CHARS`` characters."""
    if not words:
        return "it holds no list of words"
    refusal = _REFUSAL.search(reply or "")
    if refusal:
        return f"it reads as a refusal or non-answer ({refusal.group(0)!r})"
    if len(words) < k:
        return (f"it lists {len(words)} word(s) ({', '.join(words)}) but the aspect has k={k} classes: a word list "
                f"needs at least k words")
    odd = [w for w in words if len(w) > MAX_WORD_CHARS or not re.search(r"[^\W_]", w)]
    if odd:
        return f"it lists items that are not words ({', '.join(repr(w) for w in odd[:3])})"
    return None


def plural(word: str) -> str:
    """A naive English plural for the question template: color -> colors, species -> species, glass -> glasses."""
    w = word.strip()
    low = w.lower()
    if not w or low.endswith(("species", "series")):
        return w
    if low.endswith(("ss", "x", "ch", "sh", "z")):
        return w + "es"
    if low.endswith("s"):
        return w
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return w[:-1] + "ies"
    return w + "s"


def object_of(dataset: MultiViewDataset, aspect: Aspect) -> str:
    """What the images show: ``dataset.info["object"]``, else the head of the prompt ("Card with ..." -> cards)."""
    obj = dataset.info.get("object")
    if obj:
        return str(obj)
    head = re.split(r"\s+with\s+", aspect.prompt, maxsplit=1, flags=re.IGNORECASE)[0]
    head = re.sub(r"^(?:a|an|the)\s+", "", head.replace("*", "").strip(), flags=re.IGNORECASE).lower()
    return plural(head) if head else "images"
