"""What a live converter knows of the microphone's speaker, kept between runs of ``anchorvoice live``.

A converter may carry something about its input from one stream into the next
(:meth:`VoiceConverter.input_memory`: the dsp converter keeps the speaker's pitch, so the first words of a
stream get the long-run pitch ratio). Within one process the converter keeps it itself; this module keeps it
across processes, in ``<home>/live_input_memory.json`` (``{"version": 1, "<converter name>": <memory>}``),
written atomically when a live session stops and read when the next one is built. A missing file means
nothing is known yet. A file that cannot be read or that the converter refuses is reported with a warning
and set aside: the stream then starts from nothing, as a first run does.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.errors import AnchorVoiceError

log = logging.getLogger(__name__)

FILE_NAME = "live_input_memory.json"
VERSION = 1


def memory_path(home: Path) -> Path:
    return Path(home) / FILE_NAME


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s); live starts without the speaker's memory and rewrites it", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        log.warning("%s is not a version-%d memory file; live starts without it and rewrites it", path, VERSION)
        return {}
    return data


def restore(converter: VoiceConverter, home: Path) -> bool:
    """Give ``converter`` the memory stored for its name, if it has none of its own yet; True if it took one."""
    if converter.input_memory():
        return False  # this process already heard the speaker: that is newer than the file
    path = memory_path(home)
    memory = _read(path).get(converter.name)
    if not memory:
        return False
    try:
        converter.restore_input_memory(memory)
    except (AnchorVoiceError, TypeError, ValueError) as exc:
        log.warning("%s: the %r converter refused its stored memory (%s); starting without it", path,
                    converter.name, exc)
        converter.restore_input_memory(None)
        return False
    return True


def save(converter: VoiceConverter, home: Path) -> None:
    """Store ``converter``'s memory under its name (atomic replace; other converters' entries are kept)."""
    memory = converter.input_memory()
    if not memory:
        return
    path = memory_path(home)
    data = _read(path)
    data.update({"version": VERSION, converter.name: memory})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not save the live input memory to %s (%s)", path, exc)
        tmp.unlink(missing_ok=True)
