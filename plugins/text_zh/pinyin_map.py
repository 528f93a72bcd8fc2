"""Pinyin syllable -> two v2 symbols (initial, final + tone), the official opencpop-strict mapping.

The official ``chinese2.py`` rewrites pypinyin's strict initial/final pair into a spelled syllable
("" + "iou" -> "you"), then looks the syllable up in ``opencpop-strict.txt``. That table is
regular, so we compute it:

* zero-initial syllables get a pseudo initial: ``AA`` before a-finals, ``EE`` before e-finals
  (e, ei, en, eng, er), ``OO`` before o-finals (o, ou); ``y`` before i/ü-finals, ``w`` before
  u-finals, and the final loses its glide (ya -> y a, wo -> w o, you -> y ou, wei -> w ei);
  the exceptions of the table: yan -> y En, ye -> y E, yu* keeps ü (yu -> y v, yuan -> y van);
* zhi chi shi ri -> final ``ir``; zi ci si -> final ``i0``;
* uei, iou, uen after an initial are written ui, iu, un;
* j q x + u* is ü (ju -> j v).

The tone digit (1-5, 5 = neutral) is appended to the final.
"""

from __future__ import annotations

from anchorvoice.errors import TextInputError

_RETROFLEX = frozenset(("zh", "ch", "sh", "r"))
_DENTAL = frozenset(("z", "c", "s"))
_AFTER_INITIAL = {"uei": "ui", "iou": "iu", "uen": "un"}
# Zero-initial i-finals: glide dropped after y, except the table's yan/ye.
_Y_FINALS = {
    "i": "i", "in": "in", "ing": "ing", "ia": "a", "iao": "ao", "iang": "ang", "io": "o",
    "iong": "ong", "iou": "ou", "ian": "En", "ie": "E",
    "v": "v", "van": "van", "ve": "ve", "vn": "vn",
}
_W_FINALS = {
    "u": "u", "ua": "a", "uai": "ai", "uan": "an", "uang": "ang", "uei": "ei", "uen": "en",
    "ueng": "eng", "uo": "o",
}


def syllable_symbols(initial: str, final: str) -> tuple[str, str]:
    """(initial symbol, final symbol without tone) of a strict pypinyin pair, e.g. ("", "iou") -> ("y", "ou")."""
    if not final:
        raise TextInputError(f"pinyin syllable {initial!r} has no final")
    if not initial:
        if final[0] == "a":
            return "AA", final
        if final[0] == "e":
            return "EE", final
        if final[0] == "o":
            return "OO", final
        if final in _Y_FINALS:
            return "y", _Y_FINALS[final]
        if final in _W_FINALS:
            return "w", _W_FINALS[final]
        raise TextInputError(f"pinyin final {final!r} without initial is not a Mandarin syllable")
    if final == "i" and initial in _RETROFLEX:
        return initial, "ir"
    if final == "i" and initial in _DENTAL:
        return initial, "i0"
    if initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]
    return initial, _AFTER_INITIAL.get(final, final)


def syllable_phones(initial: str, final_with_tone: str) -> list[str]:
    """[initial symbol, final symbol + tone] for pypinyin's strict INITIALS / FINALS_TONE3 output."""
    tone = final_with_tone[-1:]
    if tone not in ("1", "2", "3", "4", "5"):
        raise TextInputError(f"pinyin final {final_with_tone!r} has no tone digit 1-5")
    sym_initial, sym_final = syllable_symbols(initial, final_with_tone[:-1])
    return [sym_initial, sym_final + tone]
