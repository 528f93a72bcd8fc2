"""Mandarin tone sandhi, following the rules of the official ``text/tone_sandhi.py`` (from PaddleSpeech).

Finals carry their tone as a last digit ("ao3"); 5 is the neutral tone. Before sandhi, jieba's
words are re-merged so that the rules see whole units (:meth:`ToneSandhi.pre_merge`): "不" and "一"
join the next word, "听 一 听" joins, reduplications join, runs of third tones join (up to 3
characters), "儿" joins the word before. Then, per word (:meth:`ToneSandhi.modify`):

* 不: neutral in the middle of a 3-character word (看不懂); bu2 before a 4th tone (不怕);
* 一: unchanged in number strings; neutral between a reduplication (看一看); yi1 as an ordinal
  (第一); yi2 before a 4th tone (一段), yi4 before other tones (一天) unless a mark follows;
* neutral tone: reduplicated nouns/verbs/adjectives (奶奶), sentence particles (吧呢啊...),
  的地得, aspect particles 了着过, 们/子 suffixes, 上下里 locatives, directional 来去 after
  上下进出回过起开, the measure word 个, and a list of lexical neutral-tone words;
* third tone: 3-3 -> 2-3 inside a word, split 3-character words as 2+1 or 1+2, and 4-character
  words as two pairs.
"""

from __future__ import annotations

from importlib import resources
from typing import Protocol

_PARTICLES = "吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶"
_PUNCT = "：，；。？！“”‘’':,;.?!"

Segment = list[list[str]]
"""[[word, part-of-speech], ...] as jieba.posseg gives them."""


class SearchCutter(Protocol):
    def cut_for_search(self, sentence: str) -> object: ...


def _set_tone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third(finals: list[str]) -> bool:
    return all(f.endswith("3") for f in finals)


def _finals(word: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin  # imported on first use (~0.4 s)

    return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3)


def load_word_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(words with a neutral last syllable, reduplications that keep their tones) from package data."""
    text = resources.files("anchorvoice.plugins.text_zh").joinpath("neutral_tone_words.txt").read_text(encoding="utf-8")
    lists: dict[str, set[str]] = {"neutral": set(), "not_neutral": set()}
    current: set[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = lists[line[1:-1]]
        elif current is not None:
            current.add(line)
    return frozenset(lists["neutral"]), frozenset(lists["not_neutral"])


class ToneSandhi:
    """Tone changes of Mandarin words in context; ``cutter`` is the jieba tokenizer in use."""

    def __init__(self, cutter: SearchCutter) -> None:
        self.cutter = cutter
        self.neutral_words, self.not_neutral_words = load_word_lists()

    # -- merging jieba words ---------------------------------------------------------------
    def pre_merge(self, seg: list[tuple[str, str]]) -> Segment:
        out = self._merge_bu([[w, p] for w, p in seg])
        out = self._merge_yi(out)
        out = self._merge_reduplication(out)
        out = self._merge_third_tones(out, whole_words=True)
        out = self._merge_third_tones(out, whole_words=False)
        return self._merge_er(out)

    @staticmethod
    def _merge_bu(seg: Segment) -> Segment:
        out: Segment = []
        carry = ""
        for word, pos in seg:
            word = carry + word
            carry = ""
            if word == "不":
                carry = word
            else:
                out.append([word, pos])
        if carry:
            out.append([carry, "d"])
        return out

    @staticmethod
    def _merge_yi(seg: Segment) -> Segment:
        joined: Segment = []
        i = 0
        while i < len(seg):
            word, pos = seg[i]
            if word == "一" and joined and i + 1 < len(seg):
                last, nxt = joined[-1], seg[i + 1]
                if last[0] == nxt[0] and last[1] == "v" and nxt[1] == "v":
                    joined[-1] = [last[0] + "一" + nxt[0], last[1]]
                    i += 2
                    continue
            joined.append([word, pos])
            i += 1
        out: Segment = []
        for word, pos in joined:
            if out and out[-1][0] == "一":
                out[-1][0] += word
            else:
                out.append([word, pos])
        return out

    @staticmethod
    def _merge_reduplication(seg: Segment) -> Segment:
        out: Segment = []
        for word, pos in seg:
            if out and out[-1][0] == word:
                out[-1][0] += word
            else:
                out.append([word, pos])
        return out

    def _merge_third_tones(self, seg: Segment, *, whole_words: bool) -> Segment:
        """Join neighbours that are all third tone (``whole_words``) or meet on two third tones."""
        finals = [_finals(w) for w, _ in seg]
        out: Segment = []
        merged_last = False
        for i, (word, pos) in enumerate(seg):
            if i > 0 and not merged_last and finals[i - 1] and finals[i]:
                prev = seg[i - 1][0]
                if whole_words:
                    fits = _all_third(finals[i - 1]) and _all_third(finals[i])
                else:
                    fits = finals[i - 1][-1].endswith("3") and finals[i][0].endswith("3")
                redup = len(prev) == 2 and prev[0] == prev[1]
                if fits and not redup and len(prev) + len(word) <= 3:
                    out[-1][0] += word
                    merged_last = True
                    continue
            out.append([word, pos])
            merged_last = False
        return out

    @staticmethod
    def _merge_er(seg: Segment) -> Segment:
        out: Segment = []
        for word, pos in seg:
            if out and word == "儿" and out[-1][0] != "#":
                out[-1][0] += word
            else:
                out.append([word, pos])
        return out

    # -- per-word rules --------------------------------------------------------------------
    def modify(self, word: str, pos: str, finals: list[str]) -> list[str]:
        finals = self._bu(word, list(finals))
        finals = self._yi(word, finals)
        finals = self._neutral(word, pos, finals)
        return self._third(word, finals)

    @staticmethod
    def _bu(word: str, finals: list[str]) -> list[str]:
        if len(word) == 3 and word[1] == "不":
            finals[1] = _set_tone(finals[1], "5")
            return finals
        for i, ch in enumerate(word):
            if ch == "不" and i + 1 < len(word) and finals[i + 1].endswith("4"):
                finals[i] = _set_tone(finals[i], "2")
        return finals

    @staticmethod
    def _yi(word: str, finals: list[str]) -> list[str]:
        if "一" in word and all(ch.isnumeric() for ch in word if ch != "一"):
            return finals
        if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
            finals[1] = _set_tone(finals[1], "5")
        elif word.startswith("第一"):
            finals[1] = _set_tone(finals[1], "1")
        else:
            for i, ch in enumerate(word):
                if ch != "一" or i + 1 >= len(word):
                    continue
                if finals[i + 1].endswith("4"):
                    finals[i] = _set_tone(finals[i], "2")
                elif word[i + 1] not in _PUNCT:
                    finals[i] = _set_tone(finals[i], "4")
        return finals

    def _split(self, word: str) -> tuple[str, str]:
        """Two parts of a word: its shortest search-mode sub-word and the rest (official _split_word)."""
        subs = sorted(self.cutter.cut_for_search(word), key=len)  # type: ignore[call-overload]
        first = subs[0]
        if word.find(first) == 0:
            return first, word[len(first) :]
        return word[: -len(first)], first

    def _neutral(self, word: str, pos: str, finals: list[str]) -> list[str]:
        for j in range(1, len(word)):
            if word[j] == word[j - 1] and pos[:1] in ("n", "v", "a") and word not in self.not_neutral_words:
                finals[j] = _set_tone(finals[j], "5")
        ge = word.find("个")
        last = word[-1:]
        if last and last in _PARTICLES or last and last in "的地得":
            finals[-1] = _set_tone(finals[-1], "5")
        elif len(word) == 1 and word in "了着过" and pos in ("ul", "uz", "ug"):
            finals[-1] = _set_tone(finals[-1], "5")
        elif len(word) > 1 and last in "们子" and pos in ("r", "n") and word not in self.not_neutral_words:
            finals[-1] = _set_tone(finals[-1], "5")
        elif len(word) > 1 and last in "上下里" and pos in ("s", "l", "f"):
            finals[-1] = _set_tone(finals[-1], "5")
        elif len(word) > 1 and last in "来去" and word[-2] in "上下进出回过起开":
            finals[-1] = _set_tone(finals[-1], "5")
        elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in "几有两半多各整每做是")) or word == "个":
            finals[ge] = _set_tone(finals[ge], "5")
        elif word in self.neutral_words or word[-2:] in self.neutral_words:
            finals[-1] = _set_tone(finals[-1], "5")
        first, second = self._split(word)
        cut = len(first)
        for part, start, end in ((first, 0, cut), (second, cut, len(word))):
            if end > start and (part in self.neutral_words or part[-2:] in self.neutral_words):
                finals[end - 1] = _set_tone(finals[end - 1], "5")
        return finals

    def _third(self, word: str, finals: list[str]) -> list[str]:
        if len(word) == 2 and _all_third(finals):
            finals[0] = _set_tone(finals[0], "2")
        elif len(word) == 3:
            first, _ = self._split(word)
            if _all_third(finals):
                if len(first) == 2:  # 蒙古/包
                    finals[0] = _set_tone(finals[0], "2")
                    finals[1] = _set_tone(finals[1], "2")
                elif len(first) == 1:  # 纸/老虎
                    finals[1] = _set_tone(finals[1], "2")
            else:
                cut = len(first)
                left, right = finals[:cut], finals[cut:]
                if len(left) == 2 and _all_third(left):  # 所有/人
                    left[0] = _set_tone(left[0], "2")
                if len(right) == 2 and _all_third(right):
                    right[0] = _set_tone(right[0], "2")
                elif right and not _all_third(right) and right[0].endswith("3") and left and left[-1].endswith("3"):
                    left[-1] = _set_tone(left[-1], "2")  # 好/喜欢
                finals = left + right
        elif len(word) == 4:
            for start in (0, 2):
                pair = finals[start : start + 2]
                if _all_third(pair):
                    finals[start] = _set_tone(finals[start], "2")
        return finals
