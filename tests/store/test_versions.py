"""Voice versions, voices made before the store, and several writers sharing one home."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.config import dump_toml
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.errors import VoiceError, VoiceExistsError
from tests.conftest import REPO


def _clip(path: Path, f0: float = 180.0) -> Path:
    sf.write(str(path), speech_like_signal(22050, 2.0, f0=f0).samples, 22050)
    return path


def test_replace_makes_a_new_version_and_old_ones_stay_loadable(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    v1 = lib.add("mira", [_clip(tmp_path / "a.wav")], ref_text="one")
    with pytest.raises(VoiceExistsError, match="--replace"):
        lib.add("mira", [_clip(tmp_path / "b.wav", 220.0)], ref_text="two")
    v2 = lib.add("mira", [_clip(tmp_path / "b.wav", 220.0)], ref_text="two", overwrite=True)
    assert (v1.version, v2.version) == (1, 2)
    assert "references" in v2.change and "reference text" in v2.change
    assert lib.get("mira").ref_text == "two"
    old = lib.get("mira@1")
    assert old.ref_text == "one" and old.references[0].is_file()
    assert [v.version for v in lib.history("mira")] == [1, 2]


def test_use_and_rollback(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    lib.add("mira", [_clip(tmp_path / "a.wav")], ref_text="one")
    lib.add("mira", [_clip(tmp_path / "a.wav")], ref_text="two", overwrite=True)
    assert lib.use("mira", 1).ref_text == "one"
    assert lib.get("mira").ref_text == "one" and len(lib.history("mira")) == 2  # no new version
    back = lib.rollback("mira", 2)
    assert back.version == 3 and back.ref_text == "two" and back.change == "rollback to version 2"


def test_rollback_to_a_version_that_does_not_exist_changes_nothing(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    lib.add("mira", [_clip(tmp_path / "a.wav")])
    before = (lib.folder_of("mira") / "voice.toml").read_bytes()
    with pytest.raises(VoiceError, match=r"no version 7 \(versions: 1\).*voices history mira"):
        lib.rollback("mira", 7)
    with pytest.raises(VoiceError, match="no version 7"):
        lib.get("mira@7")
    assert (lib.folder_of("mira") / "voice.toml").read_bytes() == before


def _legacy_voice(home: Path, model: Path, clip: Path) -> None:
    """A voice as anchorvoice wrote them before the store: absolute model paths, refs/ref0.wav, no versions."""
    folder = home / "voices" / "old"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "ref0.wav").write_bytes(clip.read_bytes())
    manifest = {"name": "old", "created": "2026-01-01T00:00:00", "ref_text": "hi", "ref_lang": "en",
                "references": ["refs/ref0.wav"], "models": {"bert": str(model)}, "analysis": {}}
    (folder / "voice.toml").write_text(dump_toml(manifest))


def test_voices_made_before_the_store_keep_loading_and_migrate_on_change(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = tmp_path / "bert"
    model.mkdir()
    _legacy_voice(home, model, _clip(tmp_path / "a.wav"))
    lib = VoiceLibrary(home)
    v = lib.get("old")
    assert v.version == 1 and v.models == {"bert": model} and v.references[0].is_file()
    assert [h.version for h in lib.history("old")] == [1]
    lib.add("old", [_clip(tmp_path / "b.wav", 230.0)], ref_text="hi", models={"bert": model}, overwrite=True)
    first = lib.get("old@1")
    assert first.references == [home / "voices" / "old" / "refs" / "ref0.wav"] and first.references[0].is_file()
    assert lib.get("old").version == 2


def test_a_manifest_pointing_outside_its_folder_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = home / "voices" / "evil"
    folder.mkdir(parents=True)
    (folder / "voice.toml").write_text(dump_toml({"name": "evil", "references": ["../../../etc/passwd"]}))
    with pytest.raises(VoiceError, match="damaged"):
        VoiceLibrary(home).get("evil")


WRITER = """
import sys
from pathlib import Path
from anchorvoice.engine.voices import VoiceLibrary
lib = VoiceLibrary(Path(sys.argv[1]))
for i in range(4):
    lib.rollback("mira", 1)
"""


def test_two_processes_sharing_a_home_lose_no_version(tmp_path: Path) -> None:
    home = tmp_path / "home"
    lib = VoiceLibrary(home)
    lib.add("mira", [_clip(tmp_path / "a.wav")])
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(home)], cwd=REPO) for _ in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert [v.version for v in lib.history("mira")] == list(range(1, 10))
    assert lib.get("mira").version == 9
    assert not list((home / "voices" / "mira" / "versions").glob(".*"))  # no temporary file left behind


def test_migrate_moves_path_models_into_the_store_as_a_new_version(tmp_path: Path) -> None:
    import torch

    home = tmp_path / "home"
    model = tmp_path / "bert"
    model.mkdir()
    _legacy_voice(home, model, _clip(tmp_path / "a.wav"))
    lib = VoiceLibrary(home)
    w = {"w": torch.ones(3)}
    assert lib.migrate("old", lambda kind, p: None) is None  # no plugin stores this kind: nothing changes
    v = lib.migrate("old", lambda kind, p: (w, {"config": {}}))
    assert v is not None and v.version == 2 and set(v.blobs) == {"bert"} and "moved into the store" in v.change
    assert lib.get("old@1").models == {"bert": model}  # the old version still names the path
    assert lib.migrate("old", lambda kind, p: (w, {})) is None


def test_adding_a_voice_does_not_read_every_other_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anchorvoice.engine.voices as voices_module

    lib = VoiceLibrary(tmp_path / "home")
    clip = _clip(tmp_path / "a.wav")
    for i in range(12):
        lib.add(f"v{i}", [clip])
    reads: list[Path] = []
    real = voices_module.load_toml
    monkeypatch.setattr(voices_module, "load_toml", lambda p: reads.append(Path(p)) or real(p))
    lib.add("newcomer", [clip])
    assert len(reads) <= 3, reads  # a library of hundreds of voices must not be read whole for each add
    with pytest.raises(VoiceExistsError, match="only in case"):
        lib.add("V3", [clip])
