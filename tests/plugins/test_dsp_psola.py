"""TD-PSOLA and the DSP converter's whole-clip path: pitch, resonances, contour, equaliser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from anchorvoice.errors import StageError
from anchorvoice.frames import AudioFrame, TextFrame
from anchorvoice.plugins.base_voice import EspeakVoice, FliteConfig, FliteVoice
from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp import offline, psola
from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter
from tests.plugins.speech import asterisk_clip

SR = an.SAMPLE_RATE


def vowel(f0: float, seconds: float = 1.5, formants: tuple[float, ...] = (700.0, 1800.0)) -> np.ndarray:
    """A pulse train at ``f0`` through two-pole resonances at ``formants`` (a steady sung vowel)."""
    n = int(seconds * SR)
    src = np.zeros(n)
    src[(np.arange(0, n, SR / f0)).astype(int)] = 1.0
    y = src
    for f in formants:
        r = np.exp(-np.pi * 80.0 / SR)
        y = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r * r], y)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def median_f0(x: np.ndarray) -> float:
    f0, voiced = an.voiced_frames(x)
    assert voiced.sum() > 20, "no voiced frames to measure"
    return float(np.median(f0[voiced]))


def first_peak_hz(x: np.ndarray) -> float:
    """Frequency of the strongest resonance of the clip's mean envelope between 300 and 1300 Hz."""
    env = offline.mean_envelope_db(x)
    assert env is not None
    freqs = np.fft.rfftfreq(an.N_FFT, 1.0 / SR)
    band = (freqs >= 300) & (freqs <= 1300)
    return float(freqs[band][np.argmax(env[band])])


def band_db(x: np.ndarray, rate: int, lo: float, hi: float | None) -> float:
    """Energy of ``x`` in [lo, hi) Hz (hi None: up to Nyquist), in dB."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / rate)
    return float(10 * np.log10(spec[(f >= lo) & (f < (hi if hi is not None else np.inf))].sum()))


def shifted(x: np.ndarray, ratio: float | np.ndarray, formant: float = 1.0) -> np.ndarray:
    f0, voiced = an.voiced_frames(x)
    return psola.shift(x, f0, voiced, ratio, formant)


@pytest.mark.parametrize("ratio", [0.6, 1.5, 2.8])
def test_pitch_moves_by_the_ratio_and_level_and_length_stay(ratio: float) -> None:
    x = vowel(110.0)
    y = shifted(x, ratio)
    assert len(y) == len(x) and np.isfinite(y).all()
    assert median_f0(y) == pytest.approx(110.0 * ratio, rel=0.03)
    assert abs(10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean(x.astype(float) ** 2))) < 0.5


def test_resonances_stay_unless_the_formant_ratio_moves_them() -> None:
    x = vowel(110.0)
    assert first_peak_hz(x) == pytest.approx(700.0, rel=0.08)
    assert first_peak_hz(shifted(x, 1.6)) == pytest.approx(700.0, rel=0.10)
    y = shifted(x, 1.6, formant=1.25)
    assert first_peak_hz(y) == pytest.approx(875.0, rel=0.10)
    assert median_f0(y) == pytest.approx(176.0, rel=0.03)  # the formant move leaves the pitch alone


def test_neutral_shift_is_the_input() -> None:
    x = asterisk_clip("vm-intro")
    np.testing.assert_array_equal(shifted(x, 1.0), x)


def test_out_of_range_ratios_are_refused() -> None:
    x = vowel(110.0, 0.5)
    with pytest.raises(ValueError, match="out of range"):
        shifted(x, 20.0)
    with pytest.raises(ValueError, match="out of range"):
        shifted(x, 1.0, formant=8.0)


@pytest.mark.parametrize(("voice", "target_hz"), [("kal", 280.0), ("slt", 85.0)])
def test_real_speech_lands_on_far_pitches_without_octave_errors(voice: str, target_hz: float) -> None:
    """flite's male kal up to a high voice, and its female slt down to a deep one."""
    spoken = FliteVoice(FliteConfig(voice=voice)).synthesize(TextFrame("Please check the number and dial again."))
    x = spoken.samples
    f0, voiced = an.voiced_frames(x)
    y = psola.shift(x, f0, voiced, target_hz / float(np.median(f0[voiced])))
    f0_out, voiced_out = an.voiced_frames(y)
    assert median_f0(y) == pytest.approx(target_hz, rel=0.05)
    octave_off = np.abs(np.log2(f0_out[voiced_out] / target_hz)) > 0.75
    assert octave_off.mean() < 0.05


def test_contour_ratios_keep_the_median_and_set_the_range() -> None:
    """Human speech given a 1.5x wider pitch range: median unchanged, interquartile spread x1.5."""
    x = asterisk_clip("vm-intro", "vm-options")
    f0, voiced = an.voiced_frames(x)
    med = float(np.median(f0[voiced]))
    spread = offline.f0_spread(f0[voiced])
    ratios = offline.contour_ratios(f0, voiced, 1.0, med, 1.5 * spread, strength=1.0)
    target = f0 * ratios
    assert np.median(target[voiced]) == pytest.approx(med, rel=0.01)
    assert offline.f0_spread(target[voiced]) == pytest.approx(1.5 * spread, rel=0.05)
    y = psola.shift(x, f0, voiced, ratios)
    f0_y, voiced_y = an.voiced_frames(y)
    assert offline.f0_spread(f0_y[voiced_y]) > 1.25 * spread
    assert median_f0(y) == pytest.approx(med, rel=0.05)


def test_flat_equaliser_is_transparent_and_a_tilt_is_applied() -> None:
    x = asterisk_clip("vm-intro")
    np.testing.assert_allclose(offline.equalise(x, np.zeros(an.N_FFT // 2 + 1)), x, atol=1e-5)
    freqs = np.fft.rfftfreq(an.N_FFT, 1.0 / SR)
    tilt = np.where(freqs > 2000.0, 6.0, 0.0)
    y = offline.equalise(x, tilt)

    assert band_db(y, SR, 3000, 6000) - band_db(x, SR, 3000, 6000) == pytest.approx(6.0, abs=0.5)
    assert band_db(y, SR, 200, 1500) - band_db(x, SR, 200, 1500) == pytest.approx(0.0, abs=0.5)


def _converter(reference: np.ndarray, **cfg: object) -> DspVoiceConverter:
    class _Voice:
        name = "target"
        references: list = []
        analysis = {"dsp": DspVoiceConverter.analyze_reference(AudioFrame(reference, SR))}

    conv = DspVoiceConverter(DspConfig(**cfg))  # type: ignore[arg-type]
    conv.prepare(_Voice())  # type: ignore[arg-type]
    return conv


def test_whole_clip_conversion_reports_what_it_did_and_stream_mode_still_works() -> None:
    """Human female speech toward flite's male rms: pitch ratio from both medians, formants follow."""
    ref = FliteVoice(FliteConfig(voice="rms")).synthesize(TextFrame("Welcome back to the stream, everybody. "
                                                                    "Thanks for the follow and see you soon."))
    target = DspVoiceConverter.analyze_reference(ref)["median_f0_hz"]
    x = asterisk_clip("vm-intro")
    conv = _converter(ref.samples)
    y = conv.convert(AudioFrame(x, SR)).samples
    done = conv.last_clip
    assert done is not None and done.input_median_f0_hz is not None
    assert done.pitch_ratio == pytest.approx(target / done.input_median_f0_hz, rel=1e-6)
    assert done.formant_ratio == pytest.approx(done.pitch_ratio**offline.FORMANT_PER_PITCH, rel=1e-6)
    assert done.formant_ratio < 1.0  # toward a larger (male) vocal tract
    assert median_f0(y) == pytest.approx(target, rel=0.10)
    streamed = _converter(ref.samples, offline="stream").convert(AudioFrame(x, SR)).samples
    assert median_f0(streamed) == pytest.approx(target, rel=0.10)
    with pytest.raises(StageError, match="psola, stream"):
        _converter(ref.samples, offline="fast").convert(AudioFrame(x, SR))


def test_nan_in_a_clip_is_cleaned_not_spread() -> None:
    ref = asterisk_clip("demo-congrats")
    x = asterisk_clip("vm-intro").copy()
    x[1000:1010] = np.nan
    y = _converter(ref).convert(AudioFrame(x, SR)).samples
    assert np.isfinite(y).all() and len(y) == len(x)


def _band_share_db(x: np.ndarray, rate: int, lo: float, hi: float | None = None) -> float:
    """Energy in [lo, hi) Hz relative to the whole clip's, in dB."""
    return band_db(x, rate, lo, hi) - band_db(x, rate, 0.0, None)


def test_whole_clips_keep_their_own_rate_and_bandwidth() -> None:
    """espeak-ng's 22.05 kHz speech converted toward a human voice keeps its 8-11 kHz band."""
    spoken = EspeakVoice().synthesize(TextFrame("Welcome back to the stream, everybody.", "en"))
    rate = spoken.sample_rate
    assert rate > 2 * 9000
    conv = _converter(asterisk_clip("demo-congrats"))
    assert conv.clip_rate(rate) == rate and conv.clip_rate(8000) == SR and conv.clip_rate(96000) == 48000
    y = conv.convert(spoken).samples
    assert len(y) == len(spoken.samples)
    target = conv.target_f0_hz
    assert target is not None
    from anchorvoice.audio_io import resample

    assert median_f0(resample(y, rate, SR)) == pytest.approx(target, rel=0.10)
    high_in = _band_share_db(spoken.samples, rate, 8500.0)
    assert _band_share_db(y, rate, 8500.0) > high_in - 10.0 > -60.0
    stream = _converter(asterisk_clip("demo-congrats"), offline="stream")
    assert stream.clip_rate(rate) == SR
    with pytest.raises(StageError, match="16000 Hz"):
        stream.convert(spoken)


def test_a_lower_formant_does_not_empty_the_top_of_the_band() -> None:
    """Stretching grains (formants down) moves the clip's top edge down; the gap is refilled."""
    from anchorvoice.audio_io import resample

    x16 = vowel(120.0, formants=(700.0, 1800.0, 3200.0, 5000.0, 7000.0))
    x = resample(x16, SR, 48000)
    edge = psola.bandwidth_hz(x.astype(np.float64), 48000)
    assert 7000.0 < edge < 8500.0  # 16 kHz content carried at 48 kHz
    f0, voiced = an.voiced_frames(x16)
    y = psola.shift(x, f0, voiced, 1.0, formant=0.85, rate=48000)

    def band(z: np.ndarray) -> float:
        return _band_share_db(z, 48000, 0.9 * edge, edge)

    assert band(y) > band(x) - 6.0


def test_a_fixed_shift_keeps_the_clip_s_own_pitch_range() -> None:
    """``pitch_semitones`` is a plain shift: the voice's range reshapes only automatic conversion."""
    x = asterisk_clip("vm-intro", "vm-options")
    f0, voiced = an.voiced_frames(x)
    spread_in = offline.f0_spread(f0[voiced])
    high = FliteVoice(FliteConfig(voice="slt")).synthesize(TextFrame("Welcome back to the stream, everybody."))
    conv = _converter(high.samples, pitch_semitones=-12.0)
    y = conv.convert(AudioFrame(x, SR)).samples
    f0_y, voiced_y = an.voiced_frames(y)
    assert median_f0(y) == pytest.approx(float(np.median(f0[voiced])) / 2.0, rel=0.05)
    assert offline.f0_spread(f0_y[voiced_y]) == pytest.approx(spread_in, rel=0.15)
