"""Part-of-speech tags for English homographs: NLTK's averaged-perceptron tagger data, read as JSON.

The official frontend tags every sentence with ``nltk.pos_tag`` (the averaged perceptron of
``taggers/averaged_perceptron_tagger_eng``) and reads the tag only for g2p_en's homographs ("use",
"record", "read", ...). GPT-SoVITS installs that data with its other files (``nltk_data`` under its
Python prefix); when we find it, :class:`PerceptronTagger` gives the same tags from the same three JSON
files (weights, tag dictionary, classes), so our phones match the official ones. It never runs code
from them: they are parsed as JSON and checked for shape.

The model, as NLTK defines it: a token found in the tag dictionary takes that tag; any other is scored
by summing, for each of its features, the weights of that feature per class, and takes the best class
(ties to the larger class name). Features are the token's and its neighbours' normalised forms,
suffixes, first letter and the two previous tags, with the same names NLTK uses as weight keys.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anchorvoice.errors import PluginError

TAGGER_NAME = "averaged_perceptron_tagger_eng"
PARTS = ("weights", "tagdict", "classes")
"""The JSON files of a tagger folder: ``averaged_perceptron_tagger_eng.<part>.json``."""
_START = ("-START-", "-START2-")
_END = ("-END-", "-END2-")
MAX_FILE_BYTES = 256 * 1024 * 1024
"""The real weights file is about 8 MB; a file larger than this is not a tagger."""


def nltk_data_roots() -> list[Path]:
    """Where NLTK looks for its data, in its order: ``NLTK_DATA``, ``~/nltk_data``, the Python prefix
    (``nltk_data``, ``share/nltk_data``, ``lib/nltk_data``), then the system folders."""
    roots = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    roots.append(Path.home() / "nltk_data")
    prefix = Path(sys.prefix)
    roots += [prefix / "nltk_data", prefix / "share" / "nltk_data", prefix / "lib" / "nltk_data"]
    roots += [Path(p) for p in ("/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
                                "/usr/local/lib/nltk_data")]
    return roots


def tagger_files(folder: Path) -> dict[str, Path] | None:
    """The three JSON files if ``folder`` holds them (the tagger folder itself or an ``nltk_data`` root); in a
    zip (``taggers/averaged_perceptron_tagger_eng.zip``, as NLTK's downloader leaves it) each path is the zip
    followed by the member's name."""
    for cand in (folder, folder / "taggers" / TAGGER_NAME):
        files = {part: cand / f"{TAGGER_NAME}.{part}.json" for part in PARTS}
        if all(f.is_file() for f in files.values()):
            return files
    archive = folder / "taggers" / f"{TAGGER_NAME}.zip"
    if archive.is_file():
        try:
            with zipfile.ZipFile(archive) as z:
                names = set(z.namelist())
        except (OSError, zipfile.BadZipFile):
            return None
        files = {part: archive / TAGGER_NAME / f"{TAGGER_NAME}.{part}.json" for part in PARTS}
        if all(f"{TAGGER_NAME}/{f.name}" in names for f in files.values()):
            return files
    return None


def _home(folder: Path, files: dict[str, Path]) -> Path:
    """The folder to name the tagger by: its own folder, or for a zip the nltk_data folder holding it."""
    return folder if files["weights"].parent.parent.suffix == ".zip" else files["weights"].parent


def find_tagger(setting: str) -> Path | None:
    """The tagger folder ``setting`` names: ``"auto"`` searches NLTK's data folders (None if absent),
    ``"rules"`` is None, anything else is a folder that must hold the tagger."""
    if setting == "rules":
        return None
    if setting == "auto":
        for root in nltk_data_roots():
            files = tagger_files(root)
            if files is not None:
                return _home(root, files)
        return None
    folder = Path(setting).expanduser()
    files = tagger_files(folder)
    if files is None:
        raise PluginError(
            f"pos_tagger {setting!r} holds no {TAGGER_NAME} (want the folder with {TAGGER_NAME}.weights.json, "
            ".tagdict.json and .classes.json, or the nltk_data folder above it; GPT-SoVITS installs it as "
            "nltk_data in its Python folder); or set pos_tagger to \"auto\" or \"rules\""
        )
    return _home(folder, files)


def _read_json(path: Path) -> Any:
    try:
        archive = next((p for p in path.parents if p.suffix == ".zip" and p.is_file()), None)
        if archive is not None:  # a member of NLTK's zip: read it from the archive, never extracted to disk
            with zipfile.ZipFile(archive) as z:
                member = z.getinfo(path.relative_to(archive).as_posix())
                if member.file_size > MAX_FILE_BYTES:
                    raise PluginError(f"{path} is {member.file_size} bytes: not an NLTK tagger file")
                return json.loads(z.read(member).decode("utf-8"))
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PluginError(f"{path} is {path.stat().st_size} bytes: not an NLTK tagger file")
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (OSError, KeyError, UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile) as e:
        raise PluginError(f"cannot read the POS tagger file {path}: {e} (reinstall NLTK's {TAGGER_NAME})") from None


def _normalise(word: str) -> str:
    """NLTK's pre-processing of context words: hyphenated words, 4-digit years and numbers are classes."""
    if "-" in word and word[0] != "-":
        return "!HYPHEN"
    if word.isdigit() and len(word) == 4:
        return "!YEAR"
    if word and word[0].isdigit():
        return "!DIGITS"
    return word.lower()


class PerceptronTagger:
    """NLTK's averaged-perceptron English tagger, from its JSON files (Penn Treebank tags)."""

    def __init__(self, weights: dict[str, dict[str, float]], tagdict: dict[str, str], classes: Sequence[str]) -> None:
        self.weights = weights
        self.tagdict = tagdict
        self.classes = sorted(set(classes))
        if not self.classes:
            raise PluginError("the POS tagger has no classes (reinstall NLTK's averaged_perceptron_tagger_eng)")

    @classmethod
    def load(cls, folder: Path) -> PerceptronTagger:
        files = tagger_files(folder)
        if files is None:
            raise PluginError(f"{folder} holds no {TAGGER_NAME}")
        weights, tagdict, classes = (_read_json(files[part]) for part in PARTS)
        ok = (
            isinstance(weights, dict)
            and all(isinstance(v, dict) for v in weights.values())
            and all(isinstance(w, (int, float)) for v in weights.values() for w in v.values())
            and isinstance(tagdict, dict)
            and all(isinstance(v, str) for v in tagdict.values())
            and isinstance(classes, list)
            and all(isinstance(c, str) for c in classes)
        )
        if not ok:
            raise PluginError(
                f"{folder}: the tagger files do not have NLTK's shape (weights: feature -> class -> number, "
                "tagdict: word -> tag, classes: a list of tags); reinstall NLTK's averaged_perceptron_tagger_eng"
            )
        return cls(weights, tagdict, classes)

    def _features(self, i: int, word: str, context: list[str], prev: str, prev2: str) -> list[str]:
        """The weight keys of token ``i`` (each counts once), in NLTK's order (the sums must add up in the
        same order to give the same floats)."""
        i += len(_START)
        return [
            "bias",
            "i suffix " + word[-3:],
            "i pref1 " + (word[0] if word else ""),
            "i-1 tag " + prev,
            "i-2 tag " + prev2,
            f"i tag+i-2 tag {prev} {prev2}",
            "i word " + context[i],
            f"i-1 tag+i word {prev} {context[i]}",
            "i-1 word " + context[i - 1],
            "i-1 suffix " + context[i - 1][-3:],
            "i-2 word " + context[i - 2],
            "i+1 word " + context[i + 1],
            "i+1 suffix " + context[i + 1][-3:],
            "i+2 word " + context[i + 2],
        ]

    def _predict(self, features: list[str]) -> str:
        scores: dict[str, float] = {}
        for feat in features:
            for label, weight in self.weights.get(feat, {}).items():
                scores[label] = scores.get(label, 0.0) + weight
        return max(self.classes, key=lambda label: (scores.get(label, 0.0), label))

    def tag(self, tokens: Sequence[str]) -> list[str]:
        """One tag per token (tokens as NLTK's TweetTokenizer cuts them, case kept)."""
        context = [*_START, *(_normalise(w) for w in tokens), *_END]
        prev, prev2 = _START
        tags: list[str] = []
        for i, word in enumerate(tokens):
            tag = self.tagdict.get(word) or self._predict(self._features(i, word, context, prev, prev2))
            tags.append(tag)
            prev2, prev = prev, tag
        return tags
