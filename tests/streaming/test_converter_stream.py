"""ConverterProcess / LiveResampler and the live defaults, driven through the real LiveRunner sans I/O."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from anchorvoice.engine.cli.live import live_config
from anchorvoice.engine.runner import LiveRunner
from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp.converter import DspVoiceConverter
from anchorvoice.streaming.converter_stream import ConverterProcess, LiveResampler
from anchorvoice.streaming.live_session import LiveConfig

RATE = 48000


class DelayLine(VoiceConverter):
    """A stateful 16 kHz converter that only delays (latency known), like a real one's contract."""

    name = "delay_line"
    sample_rate = 16000
    DELAY = 100

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self.DELAY

    def reset(self) -> None:
        self._buf = np.zeros(self.DELAY, np.float32)

    def process(self, block: AudioFrame) -> AudioFrame:
        joined = np.concatenate([self._buf, block.samples])
        self._buf = joined[len(block.samples):]
        return block.with_samples(joined[: len(block.samples)])


def speech_band_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise band-limited to 100 Hz-6 kHz (what survives a 16 kHz converter unchanged)."""
    x = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return (0.2 * sosfilt(butter(8, [100, 6000], btype="band", fs=RATE, output="sos"), x)).astype(np.float32)


def test_live_resampler_is_block_invariant_and_steady() -> None:
    x = speech_band_noise(0.5)
    down = LiveResampler(RATE, 16000)
    parts = [down.process(x[i : i + 480]) for i in range(0, len(x), 480)]
    assert {len(p) for p in parts} == {160}  # a steady 160 per 10 ms block, no bursts
    whole = LiveResampler(RATE, 16000).process(x)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_live_resampler_round_trip_keeps_a_tone() -> None:
    t = np.arange(RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    back = LiveResampler(16000, RATE).process(LiveResampler(RATE, 16000).process(tone))
    spectrum = np.abs(np.fft.rfft(back[RATE // 4 :] * np.hanning(len(back) - RATE // 4)))
    peak_hz = np.argmax(spectrum) * RATE / (len(back) - RATE // 4)
    assert abs(peak_hz - 1000) < 2
    assert np.sqrt(np.mean(back[RATE // 4 :] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def run_live(cfg: LiveConfig, process: ConverterProcess, x: np.ndarray) -> tuple[np.ndarray, LiveRunner]:
    """Push ``x`` through the runner in 10 ms device buffers, as a sound card would."""
    runner = LiveRunner(process, cfg.runner_config())
    out = np.zeros_like(x)
    for i in range(0, len(x) - 480 + 1, 480):
        runner.callback(x[i : i + 480], out[i : i + 480])
        while runner.step():
            pass
    return out, runner


def test_converter_process_output_is_the_input_delayed_without_glitches() -> None:
    cfg = LiveConfig()
    proc = ConverterProcess(DelayLine(), RATE, cfg.runner_config().samples(cfg.block_ms))
    x = speech_band_noise(2.0)
    y, runner = run_live(cfg, proc, x)
    # The delay is exactly what the accounts say: the runner's block + its jitter buffer (prefill
    # blocks), plus ConverterProcess.latency_samples (converter + both FIRs + the slack queue).
    start, span, max_lag = RATE // 2, RATE, 9600
    c = np.correlate(x[start - max_lag : start + span], y[start : start + span], mode="valid")
    lag = max_lag - int(np.argmax(c))
    expected = proc.latency_samples + runner.block * (1 + cfg.runner_config().prefill_blocks)
    assert abs(lag - expected) <= 2, (lag, expected)
    seg_y = y[start : start + span]
    seg_x = x[start - lag : start - lag + span]
    # Sample-accurate continuation at every block join: only the resamplers' ripple remains.
    assert np.corrcoef(seg_y, seg_x)[0, 1] > 0.995
    assert np.max(np.abs(seg_y - seg_x)) < 0.05
    stats = runner.stats()
    assert stats.errors == 0 and stats.underruns == 0 and not stats.degraded


def test_default_live_settings_keep_dsp_algorithmic_latency_under_50_ms() -> None:
    cfg = LiveConfig()
    rc = cfg.runner_config()
    proc = ConverterProcess(DspVoiceConverter(), RATE, rc.samples(cfg.block_ms))
    runner = LiveRunner(proc, rc)
    total = runner.latency.algorithmic_ms + proc.latency_ms
    assert proc.latency_ms >= 32.0  # the DSP converter's own 512 samples at 16 kHz are counted
    assert total <= 50.0, total


def test_device_rate_without_a_small_ratio_is_refused_with_advice() -> None:
    with pytest.raises(ConfigError, match="use 48000"):
        ConverterProcess(DelayLine(), 44100, 441)


def test_live_config_rejects_unusable_values() -> None:
    with pytest.raises(ConfigError, match="backend"):
        LiveConfig(backend="jack").validate()
    with pytest.raises(ConfigError, match="crossfade_ms"):
        LiveConfig(block_ms=10, crossfade_ms=20).validate()
    with pytest.raises(ConfigError, match="device_latency"):
        LiveConfig(device_latency="fast").validate()


def _args(**kw: object) -> argparse.Namespace:
    base = dict(input=None, output=None, monitor=None, backend=None, block_ms=None, context_ms=None,
                crossfade_ms=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_live_table_then_command_line_override() -> None:
    cfg = live_config({"block_ms": 20.0, "crossfade_ms": 10.0, "input": "usb"}, _args(block_ms=40.0), "vc.toml")
    assert (cfg.block_ms, cfg.crossfade_ms, cfg.input, cfg.output) == (40.0, 10.0, "usb", "virtual")
    with pytest.raises(ConfigError, match="unknown key 'blok_ms'"):
        live_config({"blok_ms": 20.0}, _args(), "vc.toml")
