"""The official ``.list`` transcript format (``path|speaker|lang|text``) and matching it to audio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anchorvoice.errors import DatasetError

LANGUAGE_ALIASES = {
    "zh": "zh", "ZH": "zh", "jp": "ja", "JP": "ja", "ja": "ja", "JA": "ja", "en": "en", "EN": "en", "En": "en",
    "ko": "ko", "KO": "ko", "Ko": "ko", "yue": "yue", "YUE": "yue", "Yue": "yue",
}
"""The official 1-get-text.py's v1 -> v2 language codes; other codes pass through lower-cased."""


@dataclass
class ListEntry:
    """One line of a ``.list`` file."""

    path: str
    """Audio path as written (only its file name is matched)."""
    speaker: str
    """Speaker name."""
    language: str
    """ISO 639-1 code (official v1 spellings mapped)."""
    text: str
    """Transcript."""
    line: int
    """1-based line number (for messages)."""


def read_list(path: Path) -> list[ListEntry]:
    """Parse a ``.list``; DatasetError naming every malformed line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read transcripts {path}: {exc} (give a UTF-8 .list file)") from None
    entries, bad = [], []
    for no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        parts = raw.split("|")
        if len(parts) != 4 or not parts[0].strip() or not parts[3].strip():
            bad.append(f"line {no}: {raw[:60]!r}")
            continue
        lang = LANGUAGE_ALIASES.get(parts[2].strip(), parts[2].strip().lower())
        entries.append(ListEntry(parts[0].strip(), parts[1].strip(), lang, parts[3].strip(), no))
    if bad:
        raise DatasetError(
            f"{path}: {len(bad)} malformed lines (each must be path|speaker|lang|text): " + "; ".join(bad[:10])
        )
    if not entries:
        raise DatasetError(f"{path} holds no transcripts (each line: path|speaker|lang|text)")
    return entries


def match_entries(
    entries: list[ListEntry], audio_names: list[str], languages: set[str], path: Path
) -> dict[str, ListEntry]:
    """Audio file name -> its entry; DatasetError listing every mismatch (unknown file, audio without a
    line, a language no text frontend covers)."""
    by_name: dict[str, ListEntry] = {}
    problems: list[str] = []
    names = set(audio_names)
    for e in entries:
        base = Path(e.path.replace("\\", "/")).name
        if base not in names:
            problems.append(f"line {e.line}: {base} is not among the audio files")
        elif e.language not in languages:
            problems.append(
                f"line {e.line}: language {e.language!r} has no text frontend "
                f"(installed: {', '.join(sorted(languages))})"
            )
        else:
            by_name[base] = e
    for name in audio_names:
        if name not in by_name and not any(Path(e.path.replace("\\", "/")).name == name for e in entries):
            problems.append(f"{name} has no line in the .list")
    if problems:
        raise DatasetError(
            f"{path} does not match the audio ({len(problems)} problems): " + "; ".join(problems[:20])
            + " (fix the .list or the folder, or leave --transcripts out to transcribe with ASR)"
        )
    return by_name


def format_list(rows: list[tuple[Path, str, str, str]]) -> str:
    """``.list`` text of (clip path, speaker, language, text) rows."""
    return "".join(f"{p}|{spk}|{lang}|{text}\n" for p, spk, lang, text in rows)
