"""Writing systems of a text and the language each one is read in, for voices that read any script.

The weight-free base voices get whatever a streamer or the chat types: "谢谢你的关注！", "ありがとう",
"Thanks 谢谢 🎉". A voice reads a run of text in one language, so :func:`script_runs` cuts the text into
runs by script and gives each the language to read it in:

* Latin letters are read in the requested language (English when it is ``auto`` or a language of
  another script);
* a script that belongs to one language is read in it (kana -> ``ja``, Hangul -> ``ko``, Thai -> ``th``,
  ...), and a script shared by several (Han, Cyrillic, Arabic, Devanagari) in the requested language
  when that language writes in it, else in its usual one (Han -> ``zh``, or ``ja`` when the text also
  has kana);
* digits, spaces and marks join the run before them (the first run when they lead).

:func:`drop_pictographs` removes emoji and other pictographs first, which a voice would otherwise read
out by their names ("party popper").
"""

from __future__ import annotations

import unicodedata

SCRIPTS: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = (
    # (script, usual language, code point ranges)
    ("han", "zh", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x323AF), (0xF900, 0xFAFF))),
    ("kana", "ja", ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))),
    ("hangul", "ko", ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))),
    ("cyrillic", "ru", ((0x0400, 0x052F),)),
    ("greek", "el", ((0x0370, 0x03FF),)),
    ("arabic", "ar", ((0x0600, 0x06FF), (0x0750, 0x077F))),
    ("hebrew", "he", ((0x0590, 0x05FF),)),
    ("thai", "th", ((0x0E00, 0x0E7F),)),
    ("devanagari", "hi", ((0x0900, 0x097F),)),
    ("latin", "en", ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F), (0x1E00, 0x1EFF))),
)

LANGUAGE_SCRIPTS: dict[str, str] = {
    # Languages that write in a script shared with others (the rest: their script's usual language).
    "zh": "han", "cmn": "han", "yue": "han", "ja": "han",
    "uk": "cyrillic", "bg": "cyrillic", "sr": "cyrillic", "mk": "cyrillic", "be": "cyrillic", "kk": "cyrillic",
    "fa": "arabic", "ur": "arabic", "mr": "devanagari", "ne": "devanagari",
}

_KEEP_SYMBOLS = frozenset("°%&+=$€£¥#@")
"""Symbols a voice reads usefully ("30°", "50%"); other pictographic symbols are dropped."""


def script_of(ch: str) -> str | None:
    """The script of one character (see SCRIPTS), None for digits, spaces, marks and symbols."""
    cp = ord(ch)
    for script, _, ranges in SCRIPTS:
        if any(lo <= cp <= hi for lo, hi in ranges):
            return script if script != "latin" or ch.isalpha() else None
    return None


def drop_pictographs(text: str) -> str:
    """``text`` without emoji, their joiners and variation selectors, or other pictographic symbols."""
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\u200d\ufe0e\ufe0f" or 0x1F3FB <= ord(ch) <= 0x1F3FF:
            continue  # zero-width joiner, variation selectors, skin tones
        if cat in ("So", "Sk", "Cs", "Co", "Cn") and ch not in _KEEP_SYMBOLS:
            kept.append(" ")  # a pictograph between words still separates them
            continue
        kept.append(ch)
    return " ".join("".join(kept).split())


def _base(language: str) -> str:
    return language.strip().lower().replace("_", "-").split("-")[0]


def _reading(script: str, language: str, has_kana: bool) -> str:
    """The language to read ``script`` in, given the requested ``language`` (or ``auto``)."""
    base = _base(language)
    usual = {s: lang for s, lang, _ in SCRIPTS}
    own_script = LANGUAGE_SCRIPTS.get(base, next((s for s, lang, _ in SCRIPTS if lang == base), "latin"))
    if script == "latin":
        return language if own_script == "latin" and base != "auto" else "en"
    if script == "han" and has_kana:
        return "ja"
    if own_script == script or (script == "kana" and base == "ja"):
        return language
    return usual[script]


def script_runs(text: str, language: str) -> list[tuple[str, str]]:
    """``[(language, text), ...]`` covering ``text`` in order; adjacent runs differ in language.

    ``language`` is what the user asked for (an ISO code, or ``auto``). Text with no letters at all is
    one run in the requested language (``en`` for ``auto``).
    """
    has_kana = any(script_of(ch) == "kana" for ch in text)
    runs: list[list[str]] = []
    pending = ""
    for ch in text:
        script = script_of(ch)
        if script is None:
            if runs:
                runs[-1][1] += ch
            else:
                pending += ch
            continue
        lang = _reading(script, language, has_kana)
        if runs and runs[-1][0] == lang:
            runs[-1][1] += ch
        else:
            runs.append([lang, pending + ch])
            pending = ""
    if not runs:
        return [("en" if _base(language) == "auto" else language, pending)] if pending.strip() else []
    return [(lang, chunk) for lang, chunk in runs]
