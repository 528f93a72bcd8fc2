"""`dataset make` through the engine service: official layout, caching, and every bad input of the issue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.audio_io import write_audio
from anchorvoice.engine.dataset.builder import MakeConfig, make_dataset
from anchorvoice.engine.dataset.store import PARTIAL, load_manifest
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import DatasetError, StageError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame
from tests.dataset.helpers import REFERENCE, TEXTS, list_file, plugins_with_extras, recordings

NAMES = ["demo-thanks", "agent-pass", "demo-enterkeywords"]
HUBERT = REFERENCE / "hubert_small"


def _make(home: Path, cfg: MakeConfig, plugins: PluginManager, events: list | None = None) -> dict:
    return make_dataset(home, cfg, plugins, events.append if events is not None else None)


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    return recordings(tmp_path / "rec", NAMES)


def test_writes_the_official_layout(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    if not HUBERT.is_dir():
        pytest.skip("shared/gsv_reference missing")
    lst = list_file(tmp_path / "t.list", NAMES)
    info = _make(tmp_path / "home", MakeConfig("mira", rec, lst, models={"hubert": HUBERT}), builtin_plugins)
    d = Path(info["path"])
    assert info["clips"] == 3 and info["transcribed"] == 3 and not info["rejects"]
    rows = (d / "mira.list").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3
    path, spk, lang, text = rows[0].split("|")
    assert Path(path).is_file() and spk == "mira" and lang == "en" and text == TEXTS["agent-pass"]
    info32 = sf.info(path)
    assert (info32.samplerate, info32.channels, info32.subtype) == (32000, 1, "PCM_16")
    lines = (d / "2-name2text.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 4
    name, phones, word2ph, norm = lines[0].split("\t")
    assert name == Path(path).name and word2ph == "None" and phones.split()[:3] == ["P", "L", "IY1"]
    assert norm.startswith("Please enter your password")
    feats = torch.load(d / "4-cnhubert" / f"{name}.pt", weights_only=True)
    assert feats.dtype == torch.float32 and feats.shape[:2] == (1, 64)
    assert abs(feats.shape[2] - info32.frames / 640) <= 2  # 50 Hz
    wav, sr = sf.read(d / "5-wav32k" / name, dtype="int16")
    clip_peak = np.abs(sf.read(path, dtype="float32")[0]).max()
    assert sr == 32000 and abs(np.abs(wav).max() - (0.95 * 0.5 + 0.5 * clip_peak) * 32768) < 3  # official mix
    assert not list(d.rglob("*" + PARTIAL))


def test_rerun_only_does_what_changed(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    lst = list_file(tmp_path / "t.list", NAMES)
    home = tmp_path / "home"
    _make(home, MakeConfig("mira", rec, lst), builtin_plugins)
    d = home / "datasets" / "mira"
    stamp = {p: p.stat().st_mtime_ns for p in (d / "clips").iterdir()}
    events: list = []
    _make(home, MakeConfig("mira", rec, lst), builtin_plugins, events)
    assert all(p.stat().st_mtime_ns == stamp[p] for p in stamp)  # nothing cut again
    assert all(e.eta_s is None for e in events)  # every item came from the cache
    lst.write_text(lst.read_text().replace("Goodbye.", "Bye."), encoding="utf-8")
    events.clear()
    _make(home, MakeConfig("mira", rec, lst), builtin_plugins, events)
    text_events = [e for e in events if e.phase == "gsv-text"]
    assert sum(e.eta_s is not None for e in text_events) == 1  # only the changed transcript redone
    assert "Bye." in (d / "2-name2text.txt").read_text(encoding="utf-8")


def test_folder_without_audio_is_refused(tmp_path: Path, builtin_plugins: PluginManager) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("hello")
    with pytest.raises(DatasetError, match="no audio"):
        _make(tmp_path / "home", MakeConfig("mira", empty, language="en"), builtin_plugins)
    assert not (tmp_path / "home" / "datasets" / "mira").exists()


def test_non_audio_file_is_skipped_and_named(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    (rec / "notes.wav").write_bytes(b"this is not a wave file")
    lst = list_file(tmp_path / "t.list", NAMES)
    info = _make(tmp_path / "home", MakeConfig("mira", rec, lst), builtin_plugins)
    assert info["clips"] == 3
    assert [s["file"] for s in info["skipped"]] == ["notes.wav"]


def test_all_clips_rejected_is_refused_with_reasons(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    write_audio(bad / "silence.wav", AudioFrame(np.zeros(5 * 16000, np.float32), 16000))
    noise = np.random.default_rng(0).normal(0, 0.05, 6 * 16000).astype(np.float32)
    write_audio(bad / "hiss.wav", AudioFrame(noise, 16000))
    with pytest.raises(DatasetError, match="every clip was rejected") as exc:
        _make(tmp_path / "home", MakeConfig("mira", bad, language="en"), plugins_with_extras())
    assert "silent" in str(exc.value) and "mostly noise" in str(exc.value)
    assert not (tmp_path / "home" / "datasets" / "mira").exists()


def test_list_mismatches_are_listed(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    lst = tmp_path / "t.list"
    lst.write_text(
        f"x/demo-thanks.g722|s|en|{TEXTS['demo-thanks']}\n"
        f"x/other.wav|s|en|Something else.\n"
        f"x/agent-pass.g722|s|fr|Bonjour.\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as exc:
        _make(tmp_path / "home", MakeConfig("mira", rec, lst), builtin_plugins)
    msg = str(exc.value)
    assert "other.wav is not among the audio files" in msg
    assert "language 'fr' has no text frontend" in msg
    assert "demo-enterkeywords.g722 has no line" in msg
    assert not (tmp_path / "home").exists()


def test_language_without_frontend_is_refused(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    with pytest.raises(UnsupportedLanguageError, match="'xx'"):
        _make(tmp_path / "home", MakeConfig("mira", rec, language="xx"), builtin_plugins)


def test_little_speech_is_warned_with_the_figure(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    info = _make(tmp_path / "home", MakeConfig("mira", rec, list_file(tmp_path / "t.list", NAMES)), builtin_plugins)
    speech = [w for w in info["warnings"] if "usable speech" in w]
    assert len(speech) == 1 and "only 15.5 s of usable speech" in speech[0]


def test_interrupted_run_resumes_without_half_files(
    tmp_path: Path, rec: Path, builtin_plugins: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anchorvoice.plugins.gsv.dataset_steps import GsvTextStep

    lst = list_file(tmp_path / "t.list", NAMES)
    home = tmp_path / "home"
    real = GsvTextStep.process
    calls = []

    def interrupted(self, clip, folder):  # Ctrl-C while the second clip is being written
        calls.append(clip.name)
        if len(calls) == 2:
            (folder / ".cache" / "text" / (clip.name + ".txt" + PARTIAL)).write_text("half")
            raise KeyboardInterrupt
        real(self, clip, folder)

    monkeypatch.setattr(GsvTextStep, "process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _make(home, MakeConfig("mira", rec, lst), builtin_plugins)
    d = home / "datasets" / "mira"
    assert load_manifest(d) is not None and not (d / "2-name2text.txt").exists()
    monkeypatch.setattr(GsvTextStep, "process", real)
    events: list = []
    _make(home, MakeConfig("mira", rec, lst), builtin_plugins, events)
    assert not list(d.rglob("*" + PARTIAL))
    assert len((d / "2-name2text.txt").read_text(encoding="utf-8").strip().split("\n")) == 3
    assert all(e.eta_s is None for e in events if e.phase == "slice")  # clips were kept, not cut again


def test_manifest_is_plain_json(tmp_path: Path, rec: Path, builtin_plugins: PluginManager) -> None:
    info = _make(tmp_path / "home", MakeConfig("mira", rec, list_file(tmp_path / "t.list", NAMES)), builtin_plugins)
    data = json.loads((Path(info["path"]) / "dataset.json").read_text())
    assert data["name"] == "mira" and len(data["clips"]) == 3


def test_hubert_clips_go_in_packed_groups_and_a_failure_names_them(
    tmp_path: Path, rec: Path, builtin_plugins: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not HUBERT.is_dir():
        pytest.skip("shared/gsv_reference missing")
    from anchorvoice.engine.dataset.runner import clip_groups
    from anchorvoice.plugins.gsv.dataset_steps import GsvHubertStep

    lst = list_file(tmp_path / "t.list", NAMES)
    groups: list[list[str]] = []
    real = GsvHubertStep.process_many

    def spy(self, clips, folder):  # type: ignore[no-untyped-def]
        groups.append([c.name for c in clips])
        real(self, clips, folder)

    monkeypatch.setattr(GsvHubertStep, "process_many", spy)
    monkeypatch.setattr(GsvHubertStep, "batch_seconds", 60.0)
    info = _make(tmp_path / "one", MakeConfig("mira", rec, lst, models={"hubert": HUBERT}), builtin_plugins)
    assert [len(g) for g in groups] == [3]  # three short clips: one packed HuBERT batch
    packed = {p.name: torch.load(p, weights_only=True) for p in (Path(info["path"]) / "4-cnhubert").glob("*.pt")}
    monkeypatch.setattr(GsvHubertStep, "batch_seconds", 0.0)
    groups.clear()
    info = _make(tmp_path / "two", MakeConfig("mira", rec, lst, models={"hubert": HUBERT}), builtin_plugins)
    assert [len(g) for g in groups] == [1, 1, 1]
    for p in (Path(info["path"]) / "4-cnhubert").glob("*.pt"):
        alone = torch.load(p, weights_only=True)
        assert alone.is_contiguous() and alone.untyped_storage().nbytes() == alone.numel() * 4  # not a view's storage
        torch.testing.assert_close(packed[p.name], alone, rtol=1e-5, atol=1e-5)

    def broken(self, clips, folder):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(GsvHubertStep, "process_many", broken)
    monkeypatch.setattr(GsvHubertStep, "batch_seconds", 60.0)
    with pytest.raises(StageError, match=r"gsv-hubert.*one of .*boom"):
        _make(tmp_path / "three", MakeConfig("mira", rec, lst, models={"hubert": HUBERT}), builtin_plugins)
    clips = _clips(seconds=(3.0, 3.0, 5.0, 9.0, 1.0))
    assert [[c.seconds for c in g] for g in clip_groups(clips, 8.0)] == [[3.0, 3.0], [5.0], [9.0], [1.0]]
    assert [len(g) for g in clip_groups(clips, 0.0)] == [1, 1, 1, 1, 1]


def _clips(seconds: tuple[float, ...]) -> list:
    from anchorvoice.engine.dataset_stages import DatasetClip

    return [DatasetClip(f"c{i}.wav", Path(f"c{i}.wav"), "s", "en", "t", "", s) for i, s in enumerate(seconds)]


def test_a_failed_feature_write_is_named_and_the_next_run_makes_it(
    tmp_path: Path, rec: Path, builtin_plugins: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not HUBERT.is_dir():
        pytest.skip("shared/gsv_reference missing")
    from anchorvoice.plugins.gsv.dataset_steps import GsvHubertStep

    lst = list_file(tmp_path / "t.list", NAMES)
    real = GsvHubertStep._write

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(GsvHubertStep, "_write", staticmethod(full))
    cfg = MakeConfig("mira", rec, lst, models={"hubert": HUBERT})
    with pytest.raises(DatasetError, match="writing the features failed.*No space left"):
        _make(tmp_path / "home", cfg, builtin_plugins)
    monkeypatch.setattr(GsvHubertStep, "_write", staticmethod(real))
    info = _make(tmp_path / "home", cfg, builtin_plugins)
    assert len(list((Path(info["path"]) / "4-cnhubert").glob("*.pt"))) == 3


def test_a_new_homograph_tagger_redoes_the_text_and_the_note_says_what_to_install(
        tmp_path: Path, rec: Path, builtin_plugins: PluginManager, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NLTK's tagger the homographs are read by rules and `dataset show` says so; once the tagger is
    installed, the next run redoes the text with it (not refused as another base model)."""
    perceptron = pytest.importorskip("nltk.tag.perceptron", reason="nltk is a dev dependency")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "no-nltk-data"))
    names = ["vm-options"]
    recs = recordings(tmp_path / "rec-vm", names)
    lst = list_file(tmp_path / "t.list", names)
    home = tmp_path / "home"
    info = _make(home, MakeConfig("mira", recs, lst), builtin_plugins)
    text = (Path(info["path"]) / "2-name2text.txt").read_text(encoding="utf-8")
    assert text.count("R IH0 K AO1 R D") == 4  # "to record": the verb, by the rules
    assert any(w.startswith("gsv-text: English homographs") and "NLTK_DATA" in w for w in info["warnings"])
    # a tagger (NLTK-trained, NLTK's files) that calls every "record" a noun
    tagger = perceptron.PerceptronTagger(load=False)
    tagger.train([[("press", "VB"), ("one", "CD"), ("to", "TO"), ("record", "NN"), ("it", "PRP"), (".", ".")]] * 5)
    loc = tmp_path / "nltk_data" / "taggers" / "averaged_perceptron_tagger_eng"
    loc.mkdir(parents=True)
    for name, obj in zip(tagger.param_files("eng"), tagger.encode_json_obj(), strict=True):
        (loc / name).write_text(json.dumps(obj))
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk_data"))
    events: list = []
    info = _make(home, MakeConfig("mira", recs, lst), builtin_plugins, events)
    assert [e.eta_s is not None for e in events if e.phase == "gsv-text"].count(True) == 1  # redone
    text = (Path(info["path"]) / "2-name2text.txt").read_text(encoding="utf-8")
    assert text.count("R EH1 K ER0 D") == 4 and "R IH0 K AO1 R D" not in text
    assert not any(w.startswith("gsv-text:") for w in info["warnings"])
