"""Write ``lexicon_gsv.txt.gz`` (package data) from a GPT-SoVITS checkout: the English dictionary it reads.

Usage (run by hand when the official dictionary changes; the package ships the result)::

    python -m anchorvoice.plugins.text_en.lexicon_build /path/to/GPT-SoVITS/GPT_SoVITS

What the official ``text/english.py`` looks words up in, merged the way it merges them:

* ``text/cmudict.rep`` (CMUdict 0.7b, 2015-07-15): entries from line 57 on, ``WORD<2 spaces>PHONES``;
  a later line for the same word replaces an earlier one; variants are separate keys (``WORD(1)``);
* ``text/cmudict-fast.rep`` (a later CMUdict, ``WORD PHONES``): only words the first file lacks;
* ``text/engdict-hot.rep`` (the project's own hot words): replace whatever the two gave;
* the abbreviations AE AI AR IOS HUD OS are removed (they are then spelled out);
* ``text/namedict_cache.pickle`` (given names): read only for a word written with one capital that
  none of the above holds. It is read with an unpickler that refuses every class, so it can only
  yield plain dicts, lists and strings.

Only keys our tokenizer can produce (letters, inner apostrophes or hyphens) are written, with their
first pronunciation (empty phones dropped, as the official g2p drops them), lower-case, one
``word<TAB>PHONES`` line each, the words under ``[words]`` and the
names under ``[names]``; the file is gzip with no timestamp, so the same input gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import pickle
import re
from pathlib import Path

OUT = Path(__file__).with_name("lexicon_gsv.txt.gz")
_KEY = re.compile(r"[a-z]+(?:['\-][a-z]+)*")
_FIRST_ENTRY_LINE = 57  # cmudict.rep: the header comment ends on line 56
_REMOVED = ("ae", "ai", "ar", "ios", "hud", "os")


class _NoClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"the name dictionary holds a {module}.{name}; expected plain data only")


def read_words(text_dir: Path) -> dict[str, list[str]]:
    """The official merged dictionary (first pronunciation per key), every key."""
    words: dict[str, list[str]] = {}
    with open(text_dir / "cmudict.rep", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if lineno >= _FIRST_ENTRY_LINE:
                key, _, pron = line.strip().partition("  ")
                words[key.lower()] = pron.split(" ")
    with open(text_dir / "cmudict-fast.rep", encoding="utf-8") as f:
        for line in f:
            word, *phones = line.strip().split(" ")
            words.setdefault(word.lower(), phones)
    with open(text_dir / "engdict-hot.rep", encoding="utf-8") as f:
        for line in f:
            word, *phones = line.strip().split(" ")
            words[word.lower()] = phones
    for word in _REMOVED:
        words.pop(word, None)
    return words


def read_names(text_dir: Path) -> dict[str, list[str]]:
    path = text_dir / "namedict_cache.pickle"
    if not path.exists():
        return {}
    with open(path, "rb") as f:
        data = _NoClasses(f).load()
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a dict of name -> pronunciations, got {type(data).__name__}")
    return {str(k): list(v[0]) for k, v in data.items() if v}


def _phones(phones: list[str]) -> str:
    # A line with three spaces after the word gives an empty phone that the official g2p drops.
    return " ".join(p for p in phones if p)


def render(words: dict[str, list[str]], names: dict[str, list[str]], source: str) -> bytes:
    out = [
        f"# GPT-SoVITS English dictionary as its text/english.py reads it; from {source}",
        "# CMU Pronouncing Dictionary (BSD-style licence, see LEXICON_NOTICE.md),",
        "# GPT-SoVITS hot words and names (MIT)",
        "[words]",
    ]
    out += [f"{w}\t{_phones(p)}" for w, p in sorted(words.items()) if _KEY.fullmatch(w)]
    out.append("[names]")
    out += [f"{w}\t{_phones(p)}" for w, p in sorted(names.items()) if _KEY.fullmatch(w)]
    return gzip.compress(("\n".join(out) + "\n").encode("utf-8"), compresslevel=9, mtime=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("official", type=Path, help="the GPT_SoVITS folder of an official checkout")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    text_dir = a.official / "text"
    if not (text_dir / "cmudict.rep").exists():
        raise SystemExit(f"{text_dir}/cmudict.rep not found: give the GPT_SoVITS folder of an official checkout")
    words, names = read_words(text_dir), read_names(text_dir)
    a.out.write_bytes(render(words, names, "GPT-SoVITS text/cmudict.rep, cmudict-fast.rep, engdict-hot.rep"))
    print(f"{a.out}: {len(words)} keys, {len(names)} names, {a.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
