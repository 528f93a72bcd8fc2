"""Split mixed Chinese/English text into language runs, as the official "auto" mode does.

The official ``LangSegmenter.getTexts`` asks a language detector for runs, then attaches digits and
marks to a neighbour. Between Han characters and Latin letters the script alone decides, so this
splitter needs no detector: Han ideographs are ``zh``, Latin letters ``en``, everything else
(digits, spaces, marks) is neutral and joins a neighbouring run:

* neutral text between two runs of the same language joins them;
* leading marks/spaces after a run stay with it (the run's own punctuation);
* a number between different languages goes, per the official digit rules, to the next run if the
  previous one ended with a sentence mark, to the previous run if the next one starts with a mark
  or the number ends with "." / "。", otherwise to the longer neighbour (the previous one on a tie);
* text with no Han or Latin character at all is given ``default``.
"""

from __future__ import annotations

_SENTENCE_END = frozenset(",.!?，。！？")
# Unit symbols written right after a number belong to the number ("5km", "-3°C"), not to English:
# both normalisers read them in their own language.
_UNITS = frozenset(("km", "m", "cm", "mm", "kg", "g", "ml", "L", "h", "min", "s", "C", "F"))


def char_language(ch: str) -> str | None:
    """``zh`` for Han ideographs, ``en`` for Latin letters, None for neutral characters."""
    cp = ord(ch)
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x323AF or 0xF900 <= cp <= 0xFAFF:
        return "zh"
    if ch.isascii() and ch.isalpha():
        return "en"
    if 0xC0 <= cp <= 0x24F and ch.isalpha():  # accented Latin (é, ñ): read by the English frontend
        return "en"
    return None


def _raw_runs(text: str) -> list[tuple[str | None, str]]:
    runs: list[tuple[str | None, str]] = []
    for ch in text:
        lang = char_language(ch)
        if runs and runs[-1][0] == lang:
            runs[-1] = (lang, runs[-1][1] + ch)
        else:
            runs.append((lang, ch))
    merged: list[tuple[str | None, str]] = []
    for lang, chunk in runs:
        if lang == "en" and chunk in _UNITS and merged and merged[-1][0] is None and merged[-1][1][-1] in "0123456789°":
            lang = None
        if merged and merged[-1][0] is None and lang is None:
            merged[-1] = (None, merged[-1][1] + chunk)
        else:
            merged.append((lang, chunk))
    return merged


def _split_neutral(neutral: str) -> tuple[str, str]:
    """Leading marks/spaces (belong to the previous run) and the rest (a number, say)."""
    i = 0
    while i < len(neutral) and not neutral[i].isdigit():
        i += 1
    return neutral[:i], neutral[i:]


def split_language_runs(text: str, default: str = "zh") -> list[tuple[str, str]]:
    """``[(language, text), ...]`` covering ``text`` in order; adjacent runs differ in language."""
    raw = _raw_runs(text)
    if not any(lang for lang, _ in raw):
        return [(default, text)] if text else []
    out: list[list[str]] = []  # [language, text]
    pending = ""  # neutral text seen before the first run
    for idx, (lang, chunk) in enumerate(raw):
        if lang is not None:
            if out and out[-1][0] == lang:
                out[-1][1] += chunk
            else:
                out.append([lang, pending + chunk])
            pending = ""
            continue
        if not out:
            pending += chunk
            continue
        nxt = next((r for r in raw[idx + 1 :] if r[0] is not None), None)
        if nxt is None or nxt[0] == out[-1][0]:
            out[-1][1] += chunk
            continue
        head, number = _split_neutral(chunk)
        out[-1][1] += head
        if not number:
            continue
        prev_text, next_text = out[-1][1].rstrip(), nxt[1]
        next_lang = str(nxt[0])
        if prev_text and prev_text[-1] in _SENTENCE_END:
            out.append([next_lang, number])  # the next run starts with the number
        elif number.rstrip()[-1:] in (".", "。") or next_text[0] in _SENTENCE_END:
            out[-1][1] += number
        elif len(prev_text) >= len(next_text):
            out[-1][1] += number
        else:
            out.append([next_lang, number])
    return [(lang, chunk) for lang, chunk in out if chunk]
