"""Our English frontend against the official GPT-SoVITS one on the Asterisk transcripts (no timing).

Usage::

    PYTHONPATH=/tmp/oracle-pkgs python bench/text_en_official.py [--official /work/official/GPT_SoVITS]
        [--nltk-data DIR]

The official side needs ``nltk g2p_en wordsegment inflect`` (+ what they import; see
``tests/fixtures/make_dataset_oracle.py``). Its ``text`` folder is copied to a temporary folder first
(the official g2p writes a dictionary cache next to its code). NLTK data it cannot find is stubbed as
the oracle does: ``pos_tag`` tags every token ``NN``, so g2p_en's homographs (read by part of speech)
are counted apart, and out-of-vocabulary words go through g2p_en's own neural model. With
``--nltk-data DIR`` (an nltk_data folder holding ``taggers/averaged_perceptron_tagger_eng``, e.g. the
stand-in ``bench/peer_drivers/standins.py tagger DIR`` writes), both sides tag with that tagger: NLTK's
own ``pos_tag`` on the official side, our reader of its files (``pos_tagger = DIR``) on ours.

Input: every transcript of ``core-sounds-en.txt.gz`` that is speech (not ``[beep]``), with ``%`` and
``￥`` replaced as ``1-get-text.py`` does. Prints, as JSON: lines whose normalised text / phones differ;
word tokens the official dictionary holds (len > 1, not homographs) and how many of them we read
otherwise than its first pronunciation; the homographs and the words the official dictionary lacks;
and ``--show N`` differing lines.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def transcripts() -> list[tuple[str, str]]:
    out = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, _, text = line.partition(":")
            text = text.strip()
            if text and not text.startswith("["):
                out.append((name, text.replace("%", "-").replace("￥", ",")))
    return out


def official_module(official: Path, work: Path, nltk_data: Path | None) -> Any:
    shutil.copytree(official / "text", work / "text")
    sys.path.insert(0, str(work))
    import nltk
    import nltk.corpus

    nltk.download = lambda *a, **k: False
    nltk.corpus.cmudict = type("_Cmu", (), {"dict": staticmethod(lambda: {})})()
    if nltk_data is None:
        nltk.pos_tag = lambda tokens, *a, **k: [(t, "NN") for t in tokens]
    else:
        nltk.data.path.insert(0, str(nltk_data))
    import text.english as english  # type: ignore[import-not-found]

    return english


def compare(english: Any, show: int, nltk_data: Path | None) -> dict[str, Any]:
    from nltk.tokenize import TweetTokenizer

    from anchorvoice.plugins.text_en.frontend import EnglishConfig, EnglishFrontend

    tokenize = TweetTokenizer().tokenize
    # keep_pauses off, as the dataset step runs it (the TTS default keeps "..." after a space as a pause)
    ours = EnglishFrontend(EnglishConfig(pos_tagger=str(nltk_data) if nltk_data else "rules", keep_pauses=False))
    cmu, homographs = english._g2p.cmu, set(english._g2p.homograph2features)
    lines = transcripts()
    text_differ = phones_differ = in_dict = dict_differ = 0
    seen_homographs: set[str] = set()
    not_in_dict: set[str] = set()
    words_differ: dict[str, tuple[str, str]] = {}
    shown: list[dict[str, str]] = []
    for name, text in lines:
        norm = english.text_normalize(text)
        phones = english.g2p(norm)
        if len(phones) < 4:
            phones = [","] + phones
        our_norm, our_phones, _ = ours.g2p(text)
        text_differ += norm != our_norm
        phones_differ += phones != our_phones
        if (norm != our_norm or phones != our_phones) and len(shown) < show:
            shown.append({"name": name, "official": norm, "ours": our_norm,
                          "official_phones": " ".join(phones), "our_phones": " ".join(our_phones)})
        for token in tokenize(norm):
            low = token.lower()
            if not re.search("[a-z]", low) or len(low) < 2:
                continue
            if low in homographs:
                seen_homographs.add(low)
            elif low in cmu:
                in_dict += 1
                got = ours.lexicon.lookup(low)
                if got != [p for p in cmu[low][0] if p]:
                    dict_differ += 1
                    words_differ[low] = (" ".join(cmu[low][0]), " ".join(got or ["(none)"]))
            else:
                not_in_dict.add(token)
    return {
        "tagger": {"official": f"nltk {nltk_data}" if nltk_data else "stub: every token NN",
                   "ours": ours.tagger_name},
        "lines": len(lines), "lines_text_differ": text_differ, "lines_phones_differ": phones_differ,
        "dictionary_word_tokens": in_dict, "dictionary_word_tokens_differ": dict_differ,
        "words_differ": {w: {"official": o, "ours": u} for w, (o, u) in sorted(words_differ.items())},
        "homographs": sorted(seen_homographs), "not_in_official_dictionary": sorted(not_in_dict),
        "differing_lines": shown,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, default=Path("/work/official/GPT_SoVITS"))
    ap.add_argument("--show", type=int, default=0, help="print this many differing lines")
    ap.add_argument("--nltk-data", type=Path, default=None,
                    help="nltk_data folder with taggers/averaged_perceptron_tagger_eng, used by both sides")
    a = ap.parse_args(argv)
    if not TRANSCRIPTS.exists():
        sys.exit(f"{TRANSCRIPTS} not found: apt-get install asterisk-core-sounds-en")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        english = official_module(a.official, Path(tmp), a.nltk_data)
        print(json.dumps(compare(english, a.show, a.nltk_data), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
