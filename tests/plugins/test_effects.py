"""Built-in effects: contract, block invariance, and what each is for (gate, limiter, high-pass)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.testing import check_stage
from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.effects.compressor import CompressorConfig, CompressorEffect, LimiterConfig, LimiterEffect
from anchorvoice.plugins.effects.gain import GainConfig, GainEffect
from anchorvoice.plugins.effects.gate import NoiseGateConfig, NoiseGateEffect
from anchorvoice.plugins.effects.highpass import HighPassConfig, HighPassEffect
from tests.plugins.speech import asterisk_clip

SR = 16000


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-30))


def _tone(freq: float, seconds: float, amp: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _run(effect, samples: np.ndarray, sr: int = SR) -> np.ndarray:
    return effect.process(AudioFrame(samples, sr)).samples


EFFECTS = [
    (GainEffect, GainConfig(gain_db=-6.0)),
    (NoiseGateEffect, NoiseGateConfig(threshold_db=-30.0, hold_ms=20.0)),
    (HighPassEffect, HighPassConfig(cutoff_hz=120.0, order=6)),
    (CompressorEffect, CompressorConfig(threshold_db=-24.0, ratio=6.0, makeup_db=12.0, ceiling_db=-3.0)),
    (LimiterEffect, LimiterConfig(input_gain_db=12.0, ceiling_db=-2.0)),
]


def test_entry_point_registers_every_effect(builtin_plugins: PluginManager) -> None:
    for cls, _ in EFFECTS:
        assert builtin_plugins.get("effect", cls.name) is cls
        assert builtin_plugins.plugin_of("effect", cls.name) == "effects"


@pytest.mark.parametrize(("cls", "config"), EFFECTS, ids=[c.name for c, _ in EFFECTS])
def test_contract(cls, config) -> None:
    check_stage(cls, config=config, sample_rate=48000, block_size=480)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real speech with quiet gaps, scaled so the compressor and gate both have work to do."""
    return asterisk_clip("agent-pass", "activated")[: SR * 3] * 1.5


@pytest.mark.parametrize(("cls", "config"), EFFECTS, ids=[c.name for c, _ in EFFECTS])
@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(1, SR * 3 - 1), max_size=12))
def test_block_invariance(cls, config, cuts, speech) -> None:
    whole = _run(cls(config), speech)
    effect = cls(config)
    edges = [0, *sorted(set(cuts)), len(speech)]
    parts = [_run(effect, speech[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_gain_scales_and_ramps_on_change() -> None:
    fx = GainEffect(GainConfig(gain_db=6.0))
    x = np.full(1600, 0.1, np.float32)
    np.testing.assert_allclose(_run(fx, x), 0.1 * 10 ** (6 / 20), rtol=1e-6)
    fx.set_param("gain_db", -6.0)
    y = _run(fx, x)
    # 10 ms ramp at 16 kHz = 160 samples: no step larger than the whole change / 160 (+ rounding).
    assert np.max(np.abs(np.diff(y))) <= 0.1 * (10 ** (6 / 20) - 10 ** (-6 / 20)) / 160 + 1e-6
    np.testing.assert_allclose(y[160:], 0.1 * 10 ** (-6 / 20), rtol=1e-6)


def test_gate_silences_noise_below_threshold_and_passes_speech() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(SR) * 10 ** (-60 / 20)).astype(np.float32)  # -60 dBFS hiss
    loud = _tone(220.0, 0.5, 0.3)  # about -13.5 dBFS
    fx = NoiseGateEffect(NoiseGateConfig(threshold_db=-45.0))
    out = _run(fx, np.concatenate([noise, loud + noise[: len(loud)], noise]))
    gated_noise = out[SR // 2 : SR]  # noise alone, well after start
    assert _db(gated_noise) < -130.0
    body = out[SR + 800 : SR + SR // 2]  # 50 ms into the tone
    assert abs(_db(body) - _db(loud[800:])) < 0.1
    tail = out[SR + SR // 2 + 4000 :]  # hold 50 ms + release 80 ms are long over after 250 ms
    assert _db(tail) < -120.0


def test_gate_hold_keeps_short_pauses_open() -> None:
    fx = NoiseGateEffect(NoiseGateConfig(threshold_db=-40.0, hold_ms=100.0, release_ms=50.0))
    tone = _tone(300.0, 0.3, 0.2)
    pause = np.zeros(int(0.06 * SR), np.float32)  # 60 ms gap < 100 ms hold
    out = _run(fx, np.concatenate([tone, pause, tone]))
    after = out[len(tone) + len(pause) : len(tone) + len(pause) + 80]
    ref = tone[:80]
    np.testing.assert_allclose(after, ref, atol=0.02)  # gate was still open: the onset is not cut


def test_limiter_ceiling_holds_on_overdriven_speech(speech) -> None:
    hot = speech * 20.0  # peaks far above full scale
    for ceiling in (-1.0, -6.0):
        fx = CompressorEffect(CompressorConfig(ceiling_db=ceiling, makeup_db=18.0))
        out = _run(fx, hot)
        assert np.max(np.abs(out)) <= 10 ** (ceiling / 20) * (1 + 1e-6)
        assert np.max(np.abs(out)) > 10 ** (ceiling / 20) * 0.9  # and it is not just muting


def test_limiter_alone_is_transparent_under_the_ceiling_and_holds_it_above(speech) -> None:
    quiet = speech * 0.1  # peaks well under -1 dBFS
    fx = LimiterEffect()
    out = _run(fx, quiet)
    lag = fx.latency_samples
    np.testing.assert_allclose(out[lag:], quiet[: len(quiet) - lag], atol=1e-6)
    loud = _run(LimiterEffect(LimiterConfig(input_gain_db=30.0, ceiling_db=-3.0)), speech)
    assert np.max(np.abs(loud)) <= 10 ** (-3 / 20) * (1 + 1e-6)


def test_compressor_static_curve() -> None:
    # Hard knee, threshold -18 dBFS peak, ratio 4: a sine at -6 dBFS peak comes out at -15 dBFS peak.
    fx = CompressorEffect(CompressorConfig(threshold_db=-18.0, ratio=4.0, knee_db=0.0, ceiling_db=0.0))
    out = _run(fx, _tone(1000.0, 1.0, 10 ** (-6 / 20)))
    peak_db = 20 * np.log10(np.max(np.abs(out[SR // 2 :])))
    assert abs(peak_db - (-15.0)) < 0.5
    # Under the threshold (-40 dBFS peak) it only delays by the look-ahead.
    fx = CompressorEffect(CompressorConfig(ceiling_db=0.0))
    quiet = _run(fx, _tone(1000.0, 0.5, 0.01))
    lag = fx.latency_samples
    np.testing.assert_allclose(quiet[lag:], _tone(1000.0, 0.5, 0.01)[: len(quiet) - lag], atol=1e-6)


def test_compressor_latency_is_the_lookahead() -> None:
    fx = CompressorEffect(CompressorConfig(lookahead_ms=2.0, ceiling_db=0.0))
    x = np.zeros(200, np.float32)
    x[10] = 0.01
    out = _run(fx, x, sr=SR)
    assert fx.latency_samples == 32
    assert int(np.argmax(np.abs(out))) == 10 + 32


def test_highpass_removes_dc_and_mains_hum_keeps_voice() -> None:
    fx = HighPassEffect()  # 80 Hz, 4th order
    dc = np.full(SR * 2, 0.5, np.float32)
    assert np.max(np.abs(_run(fx, dc)[SR:])) < 1e-4
    for freq, lo, hi in ((50.0, -80.0, -15.0), (1000.0, -0.05, 0.05), (200.0, -0.2, 0.1)):
        fx.reset()
        x = _tone(freq, 2.0, 0.5)
        change = _db(_run(fx, x)[SR:]) - _db(x[SR:])
        assert lo < change < hi, (freq, change)


def test_bad_parameters_name_the_key() -> None:
    sig = _tone(440.0, 0.1, 0.1)
    with pytest.raises(ConfigError, match="order"):
        _run(HighPassEffect(HighPassConfig(order=3)), sig)
    with pytest.raises(ConfigError, match="cutoff_hz"):
        _run(HighPassEffect(HighPassConfig(cutoff_hz=9000.0)), sig)
    with pytest.raises(ConfigError, match="ratio"):
        _run(CompressorEffect(CompressorConfig(ratio=0.5)), sig)
    with pytest.raises(ConfigError, match="range_db"):
        _run(NoiseGateEffect(NoiseGateConfig(range_db=6.0)), sig)
    with pytest.raises(ConfigError):
        GainEffect().set_param("gain_db", "loud")


def test_rate_change_rebuilds_state() -> None:
    fx = HighPassEffect()
    _run(fx, _tone(440.0, 0.1, 0.5), sr=16000)
    out48 = _run(fx, _tone(440.0, 0.1, 0.5, sr=48000), sr=48000)
    fresh = _run(HighPassEffect(), _tone(440.0, 0.1, 0.5, sr=48000), sr=48000)
    np.testing.assert_array_equal(out48, fresh)


@pytest.mark.parametrize(("cls", "config"), EFFECTS, ids=[c.name for c, _ in EFFECTS])
def test_a_nan_block_does_not_poison_the_state(cls, config, speech, caplog) -> None:
    effect = cls(config)
    bad = speech[:1600].copy()
    bad[100] = np.nan
    bad[200] = np.inf
    with caplog.at_level("WARNING"):
        first = _run(effect, bad)
    assert np.all(np.isfinite(first))
    assert "NaN/inf" in caplog.text
    after = _run(effect, speech[1600:8000])
    assert np.all(np.isfinite(after)) and np.max(np.abs(after)) > 0.0


CHAIN = """
[pipeline]
name = "fx"
mode = "vc"
sample_rate = 48000

[slots.converter]
plugin = "dsp"
params = { pitch_semitones = 0.0, formant_ratio = 1.0 }

[[effects]]
plugin = "highpass"
params = { cutoff_hz = 100.0 }

[[effects]]
plugin = "noise_gate"
params = { threshold_db = -50.0 }

[[effects]]
plugin = "compressor"
params = { makeup_db = 24.0, ceiling_db = -2.0 }

[[effects]]
plugin = "gain"
params = { gain_db = -6.0 }
"""


def test_effect_chain_from_a_preset(tmp_path, builtin_plugins: PluginManager, speech) -> None:
    """The effects run as the engine's pipeline builds them from TOML: the last stage is a -6 dB
    gain after a -2 dBFS limiter, so the output peak is at most -8 dBFS and close to it."""
    from anchorvoice.engine.engine import Engine, EngineConfig

    (tmp_path / "fx.toml").write_text(CHAIN, encoding="utf-8")
    (tmp_path / "bad.toml").write_text(CHAIN.replace("cutoff_hz", "cutof_hz"), encoding="utf-8")
    eng = Engine(EngineConfig(home=tmp_path / "home", third_party_plugins=False), plugins=builtin_plugins)
    try:
        pipe = eng.pipeline(tmp_path / "fx.toml", None)
        assert [fx.name for fx in pipe.effects] == ["highpass", "noise_gate", "compressor", "gain"]
        out = pipe.convert(AudioFrame(speech, SR))
        peak_db = 20 * np.log10(np.max(np.abs(out.samples)))
        assert -9.0 < peak_db <= -8.0 + 1e-4
        with pytest.raises(ConfigError, match="cutof_hz"):
            eng.pipeline(tmp_path / "bad.toml", None)
    finally:
        eng.close()
