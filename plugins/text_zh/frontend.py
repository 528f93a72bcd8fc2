"""Mandarin text frontend: text -> initials/finals of the v2 symbol table, two phones per character.

Follows the official GPT-SoVITS ``text/chinese2.py`` pypinyin path (``is_g2pw = False``): jieba
part-of-speech segmentation, the tone-sandhi pre-merge, pypinyin strict initials and tone-3 finals
(neutral tone = 5), tone sandhi per word, erhua tone fix, then the opencpop-strict mapping.
``word2ph`` has one entry per character of the normalised text: 2 for a syllable, 1 for a mark
(per word for English runs, see the English frontend).
The official default predicts polyphones with the G2PW neural model instead; that needs its ONNX
model and is not implemented here (pypinyin's phrase dictionary decides polyphones).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from anchorvoice.plugins.text_common.base import FrontendConfig, GsvFrontend, Phonemes
from anchorvoice.plugins.text_common.langsplit import split_language_runs
from anchorvoice.plugins.text_common.punctuation import FULLWIDTH_TO_ASCII, is_speakable_char
from anchorvoice.plugins.text_common.symbols import PUNCTUATION, UNKNOWN
from anchorvoice.plugins.text_en.frontend import EnglishConfig, EnglishFrontend
from anchorvoice.plugins.text_zh.normalize import normalize
from anchorvoice.plugins.text_zh.pinyin_map import syllable_phones
from anchorvoice.plugins.text_zh.tone_sandhi import ToneSandhi

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice
    from anchorvoice.frames import FloatArray
    from anchorvoice.plugins.text_zh.bert import ChineseBert

# Official chinese2._merge_erhua word lists.
_MUST_ERHUA = frozenset("小院儿 胡同儿 范儿 老汉儿 撒欢儿 寻老礼儿 妥妥儿 媳妇儿".split())
_NOT_ERHUA = frozenset(
    "虐儿 为儿 护儿 瞒儿 救儿 替儿 有儿 一儿 我儿 俺儿 妻儿 拐儿 聋儿 乞儿 患儿 幼儿 孤儿 婴儿 婴幼儿 "
    "连体儿 脑瘫儿 流浪儿 体弱儿 混血儿 蜜雪儿 舫儿 祖儿 美儿 应采儿 可儿 侄儿 孙儿 侄孙儿 女儿 男儿 "
    "红孩儿 花儿 虫儿 马儿 鸟儿 猪儿 猫儿 狗儿 少儿".split()
)
# Official cleaner.special: in Chinese text "￥" / "^" mark a long pause; the text is read with ","
# in their place and then every "," phoneme becomes SP2 / SP3 (the official rule, applied to all
# commas of the text).
_SPECIAL_PAUSES = (("￥", "SP2"), ("^", "SP3"))
_SPLIT_RE = re.compile("(?<=[" + "".join(re.escape(p) for p in PUNCTUATION) + r"])\s*")


@dataclass
class ChineseConfig(FrontendConfig):
    """Mandarin frontend parameters."""

    jieba_cache_dir: str = ""
    """Where jieba keeps its dictionary cache; "" = the system temporary directory."""
    bert_path: str = ""
    """chinese-roberta-wwm-ext-large folder for BERT features; "" = the voice's "bert" model, else none."""
    bert_device: str = "cpu"
    """Torch device the BERT model runs on."""


def _erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """Official _merge_erhua: a final 儿 takes the tone of the syllable before it."""
    for i, fin in enumerate(finals):
        if i == len(finals) - 1 and word[i] == "儿" and fin == "er1":
            finals[i] = "er2"
    if word not in _MUST_ERHUA and (word in _NOT_ERHUA or pos in ("a", "j", "nr")):
        return initials, finals
    if len(finals) != len(word):
        return initials, finals
    out: list[str] = []
    for i, fin in enumerate(finals):
        if i == len(finals) - 1 and word[i] == "儿" and fin in ("er2", "er5") and word[-2:] not in _NOT_ERHUA and out:
            fin = "er" + out[-1][-1]
        out.append(fin)
    return initials, out


class ChineseFrontend(GsvFrontend):
    """Mandarin (jieba + pypinyin + tone sandhi), GPT-SoVITS v2 symbols; Latin words read as English.

    Runs of Latin letters inside Chinese text go to the English frontend, as every official Chinese
    mode does (``LangSegmenter`` marks them "en" even in "all_zh"); BERT features, when a model
    is loaded, cover the Chinese runs and are zeros for the English ones (official ``get_bert_inf``).
    """

    name = "zh"
    languages: ClassVar[tuple[str, ...]] = ("zh",)
    Config = ChineseConfig

    def __init__(self, config: ChineseConfig | None = None) -> None:
        super().__init__(config)
        self.config: ChineseConfig
        self._posseg: Any = None
        self._sandhi: ToneSandhi | None = None
        self._english: EnglishFrontend | None = None
        self.bert: ChineseBert | None = None
        # (language, normalised text, word2ph) of each run of the last g2p call, for BERT features.
        self._pieces: list[tuple[str, str, list[int]]] = []

    @property
    def english(self) -> EnglishFrontend:
        """The frontend for Latin runs (its own short-text rule off: the rule applies to the whole)."""
        if self._english is None:
            self._english = EnglishFrontend(EnglishConfig(min_phones=0))
        return self._english

    def prepare(self, voice: Voice | None) -> None:
        """Load BERT (``bert_path``, else the voice's ``models["bert"]``) and jieba's dictionary now,
        so that the first sentence does not wait for them."""
        path = self.config.bert_path or (str(voice.models["bert"]) if voice and "bert" in voice.models else "")
        self._load_bert(path)
        self._tools()

    def close(self) -> None:
        self.bert = None

    def _load_bert(self, path: str) -> None:
        if not path:
            self.bert = None
        elif self.bert is None or self.bert.folder != Path(path):
            from anchorvoice.plugins.text_zh.bert import ChineseBert

            self.bert = ChineseBert(path, self.config.bert_device)

    def bert_features(self, norm: str, symbols: list[str], word2ph: list[int]) -> FloatArray | None:
        if self.bert is None and self.config.bert_path:
            self._load_bert(self.config.bert_path)
        if self.bert is None:
            return None  # the GPT stage uses zeros, as the official inference does without BERT
        hidden = self.bert.config.hidden_size
        parts = [
            self.bert.features(piece, w2p) if lang == "zh" else np.zeros((hidden, sum(w2p)), np.float32)
            for lang, piece, w2p in self._pieces
        ]
        return np.concatenate(parts, axis=1)

    def _tools(self) -> tuple[Any, ToneSandhi]:
        """jieba part-of-speech tokenizer and the sandhi rules bound to it, built on first use.

        Without ``jieba_cache_dir`` this is jieba's own process-wide default tokenizer (its
        dictionary is read once per process, as the official code does); with it, a private
        tokenizer that keeps its cache in that directory.
        """
        if self._posseg is None or self._sandhi is None:
            import jieba
            import jieba.posseg

            logging.getLogger("jieba").setLevel(logging.WARNING)  # it logs dictionary loading at DEBUG
            if self.config.jieba_cache_dir:
                tokenizer = jieba.Tokenizer()
                tokenizer.tmp_dir = self.config.jieba_cache_dir
                self._posseg = jieba.posseg.POSTokenizer(tokenizer)
            else:
                tokenizer = jieba.dt
                self._posseg = jieba.posseg.dt
            self._sandhi = ToneSandhi(tokenizer)
        return self._posseg, self._sandhi

    def runs(self, text: str) -> list[tuple[str, str]]:
        """``[(language, text), ...]`` this frontend reads; runs with nothing to say are left out."""
        return [
            (lang, chunk)
            for lang, chunk in split_language_runs(text.translate(FULLWIDTH_TO_ASCII), default="zh")
            if any(is_speakable_char(c) for c in chunk)
        ]

    def g2p(self, text: str) -> Phonemes:
        self._pieces = []
        norm_parts: list[str] = []
        symbols: list[str] = []
        word2ph: list[int] = []
        for lang, chunk in self.runs(text):
            norm, syms, w2p = self.english.g2p(chunk) if lang == "en" else self.mandarin(chunk)
            if not syms:
                continue
            self._pieces.append((lang, norm, w2p))
            norm_parts.append(norm)
            symbols.extend(syms)
            word2ph.extend(w2p)
        return "".join(norm_parts), symbols, word2ph

    def mandarin(self, text: str) -> Phonemes:
        """Official chinese2 text_normalize + g2p (pypinyin path) with the special pause marks."""
        for mark, pause in _SPECIAL_PAUSES:
            if mark in text:
                norm, symbols, word2ph = self._read_mandarin(text.replace(mark, ","))
                return norm, [pause if s == "," else s for s in symbols], word2ph
        return self._read_mandarin(text)

    def _read_mandarin(self, text: str) -> Phonemes:
        from pypinyin import Style, lazy_pinyin  # here, not at import: its phrase dictionary takes ~0.4 s

        norm = normalize(text)
        posseg, sandhi = self._tools()
        symbols: list[str] = []
        word2ph: list[int] = []
        for sentence in (s for s in _SPLIT_RE.split(norm) if s.strip()):
            words = [(w.word, w.flag) for w in posseg.lcut(sentence)]
            for word, pos in sandhi.pre_merge(words):
                initials = lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS)
                finals = lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3)
                if len(finals) == len(word):
                    finals = sandhi.modify(word, pos, finals)
                initials, finals = _erhua(initials, finals, word, pos)
                for c, v in zip(initials, finals):
                    phones = self._syllable(c, v)
                    symbols.extend(phones)
                    word2ph.append(len(phones))
        return norm, symbols, word2ph

    @staticmethod
    def _syllable(initial: str, final: str) -> list[str]:
        if initial == final:
            # pypinyin returns marks unchanged in both styles; a Han character it cannot read
            # comes back the same way and is spoken as UNK (the official code asserts instead).
            return [initial] if initial in PUNCTUATION else [UNKNOWN]
        return syllable_phones(initial, final)
