"""`.avoice` archives: a voice travels whole, and hostile archives are refused with their reason."""

from __future__ import annotations

import errno
import stat
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.store import archive
from anchorvoice.engine.store.archive import ArchiveError, ArchiveLimits, export_voice, import_voice
from anchorvoice.engine.store.blobs import read_blob
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.errors import VoiceError


def _clip(path: Path, f0: float = 180.0) -> Path:
    sf.write(str(path), speech_like_signal(22050, 2.0, f0=f0).samples, 22050)
    return path


def _toy(seed: int) -> dict[str, torch.Tensor]:
    return {"w": torch.randn(64, 64, generator=torch.Generator().manual_seed(seed))}


def _library(tmp: Path, home: str = "home") -> VoiceLibrary:
    """mira and noor share a base model; mira also has a model of her own."""
    lib = VoiceLibrary(tmp / home)
    f = tmp / "file"
    f.write_bytes(b"x")
    seeds = {"base": 1, "own": 2}
    imp = lambda kind, p: (_toy(seeds[kind]), {"config": {"k": kind}})  # noqa: E731
    lib.add("mira", [_clip(tmp / "a.wav")], ref_text="hi", models={"base": f, "own": f}, importer=imp)
    lib.add("noor", [_clip(tmp / "b.wav", 230.0)], models={"base": f}, importer=imp)
    return lib


def _empty(lib: VoiceLibrary) -> bool:
    """Nothing visible in the home: no voice, no blob, no staging folder."""
    home = lib.home
    return lib.names() == [] and lib.blobs.shas() == [] and not list(home.glob(".import-*"))


def test_a_voice_travels_whole_with_its_base(tmp_path: Path) -> None:
    src = _library(tmp_path)
    out = tmp_path / "mira.avoice"
    manifest = export_voice(src, "mira", out, with_base=True)
    assert all(b["included"] for b in manifest["blobs"].values())
    dst = VoiceLibrary(tmp_path / "other")
    got = import_voice(dst, out, dst.add)
    mira = src.get("mira")
    assert got.blobs == mira.blobs and got.ref_text == "hi"
    assert got.references[0].read_bytes() == mira.references[0].read_bytes()
    assert torch.equal(read_blob(got.models["own"])[0]["w"], _toy(2)["w"])


def test_without_its_base_an_archive_needs_a_home_that_has_it(tmp_path: Path) -> None:
    src = _library(tmp_path)
    out = tmp_path / "mira.avoice"
    manifest = export_voice(src, "mira", out)
    included = {b["kind"] for b in manifest["blobs"].values() if b["included"]}
    assert included == {"own"}  # the shared base stays home
    dst = VoiceLibrary(tmp_path / "other")
    with pytest.raises(VoiceError, match="--with-base"):
        import_voice(dst, out, dst.add)
    assert dst.names() == []
    src.remove("mira")
    assert import_voice(src, out, src.add).name == "mira"  # a home with the base takes it


def test_the_same_name_twice_is_refused_unless_replace(tmp_path: Path) -> None:
    src = _library(tmp_path)
    out = tmp_path / "mira.avoice"
    export_voice(src, "mira", out)
    with pytest.raises(VoiceError, match="already exists.*--replace"):
        import_voice(src, out, src.add)
    assert src.get("mira").version == 1
    assert import_voice(src, out, src.add, replace=True).version == 2
    assert import_voice(src, out, src.add, name="mira2").name == "mira2"


def _hostile(tmp: Path, entries: dict[str, bytes], *, symlink: str = "", manifest: bool = True) -> Path:
    p = tmp / "evil.avoice"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if manifest:
            zf.writestr("manifest.json", '{"format": "anchorvoice-voice", "format_version": 1, '
                                         '"voice": {"name": "evil", "references": []}, "blobs": {}}')
        for n, data in entries.items():
            zf.writestr(n, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return p


SHA = "a" * 64


@pytest.mark.parametrize(
    ("entries", "symlink", "reason"),
    [
        ({"../../evil.wav": b"RIFF"}, "", "outside the archive layout"),
        ({"/etc/cron.d/x": b"x"}, "", "outside the archive layout"),
        ({"refs\\..\\..\\x.wav": b"RIFF"}, "", "outside the archive layout"),
        ({}, "refs/link.wav", "symbolic link"),
        ({"blobs/model.pth": b"\x80\x02}q."}, "", "pickled model file"),
        ({f"blobs/{SHA}": b"\x80\x04\x95cos\nsystem\n"}, "", "pickle"),
        ({"refs/a.wav": b"\x80\x04\x95"}, "", "pickle"),
        ({"refs/a.wav": b"\0" * (30 * 1024 * 1024)}, "", "zip bomb"),
        ({f"refs/{i}.wav": b"RIFF" for i in range(300)}, "", "zip bomb"),
        ({f"blobs/{SHA}": b"\x10\0\0\0\0\0\0\0{\"a\": 1}       xx"}, "", "hash"),
    ],
    ids=["dotdot", "absolute", "backslash", "symlink", "pickle-name", "pickle-blob", "pickle-clip", "ratio",
         "entries", "hash"],
)
def test_hostile_archives_are_refused_with_the_reason(tmp_path: Path, entries: dict[str, bytes], symlink: str,
                                                      reason: str) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    with pytest.raises(ArchiveError, match=reason):
        import_voice(lib, _hostile(tmp_path, entries, symlink=symlink), lib.add)
    assert _empty(lib)


def test_an_archive_bigger_than_allowed_is_refused(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    p = _hostile(tmp_path, {"refs/a.wav": b"RIFF" + bytes(range(256)) * 64})
    with pytest.raises(ArchiveError, match="more than"):
        import_voice(lib, p, lib.add, limits=ArchiveLimits(max_bytes=1000))
    assert _empty(lib)


def test_not_a_zip_or_no_manifest(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    junk = tmp_path / "junk.avoice"
    junk.write_bytes(b"hello")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        import_voice(lib, junk, lib.add)
    with pytest.raises(ArchiveError, match="no manifest.json"):
        import_voice(lib, _hostile(tmp_path, {"refs/a.wav": b"RIFF"}, manifest=False), lib.add)
    assert _empty(lib)


@pytest.mark.parametrize("where", ["unpacking", "writing the voice"])
def test_disk_full_during_import_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             where: str) -> None:
    src = _library(tmp_path)
    out = tmp_path / "mira.avoice"
    export_voice(src, "mira", out, with_base=True)
    dst = VoiceLibrary(tmp_path / "other")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "unpacking":
        real = archive._extract
        calls = iter(range(100))
        monkeypatch.setattr(archive, "_extract", lambda *a: full() if next(calls) == 1 else real(*a))
    else:
        monkeypatch.setattr("anchorvoice.engine.store.history.atomic_write_text", full)
    with pytest.raises(OSError, match="No space"):
        import_voice(dst, out, dst.add)
    assert dst.names() == [] and not list(dst.home.glob(".import-*"))
    assert not (dst.home / "voices").exists() or not [p for p in (dst.home / "voices").iterdir()]
    assert all(dst.blobs.verify(sha) == "" for sha in dst.blobs.shas())  # blobs there are whole (gc drops them)
