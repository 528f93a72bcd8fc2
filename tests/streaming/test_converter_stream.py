"""ConverterProcess / LiveResampler and the live defaults, driven through the real LiveRunner sans I/O."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from anchorvoice.engine.live import NEURAL_BLOCK_MS, live_config
from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp.converter import DspVoiceConverter
from anchorvoice.streaming.converter_stream import ConverterProcess, LiveResampler
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.runner import LiveRunner

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
    runner = LiveRunner(process, cfg)
    out = np.zeros_like(x)
    for i in range(0, len(x) - 480 + 1, 480):
        runner.callback(x[i : i + 480], out[i : i + 480])
        while runner.step():
            pass
    return out, runner


def test_converter_process_output_is_the_input_delayed_without_glitches() -> None:
    cfg = LiveConfig()
    proc = ConverterProcess(DelayLine(), RATE, cfg.samples(cfg.block_ms))
    x = speech_band_noise(2.0)
    y, runner = run_live(cfg, proc, x)
    # The delay is exactly what the accounts say: the runner's block + its jitter buffer (prefill
    # blocks), plus ConverterProcess.latency_samples (converter + both FIRs + the slack queue).
    start, span, max_lag = RATE // 2, RATE, 9600
    c = np.correlate(x[start - max_lag : start + span], y[start : start + span], mode="valid")
    lag = max_lag - int(np.argmax(c))
    expected = proc.latency_samples + runner.block * (1 + cfg.prefill_blocks())
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
    proc = ConverterProcess(DspVoiceConverter(), RATE, cfg.samples(cfg.block_ms))
    runner = LiveRunner(proc, cfg)
    assert runner.block_mode
    total = runner.latency.algorithmic_ms + proc.latency_ms
    assert proc.latency_ms >= 32.0  # the DSP converter's own 512 samples at 16 kHz are counted
    assert total <= 50.0, total


def test_device_rate_without_a_small_ratio_is_refused_with_advice() -> None:
    with pytest.raises(ConfigError, match="use 48000"):
        ConverterProcess(DelayLine(), 44100, 441)


def test_converter_process_takes_exactly_one_block() -> None:
    # Block mode only: a window (context + block) is refused instead of being cut again.
    proc = ConverterProcess(DelayLine(), RATE, 480)
    with pytest.raises(ValueError, match="exactly one 480-sample block per call, got 960"):
        proc(AudioFrame(np.zeros(960, np.float32), RATE))
    assert len(proc(AudioFrame(np.zeros(480, np.float32), RATE)).samples) == 480


def test_live_config_rejects_unusable_values() -> None:
    with pytest.raises(ConfigError, match=r"\[live.backend\] is unknown"):
        LiveConfig(backend="jack").validate()
    with pytest.raises(ConfigError, match=r"\[live.crossfade_ms\]"):
        LiveConfig(block_ms=10, crossfade_ms=20).validate()
    with pytest.raises(ConfigError, match=r"\[live.device_latency\]"):
        LiveConfig(device_latency="fast").validate()
    with pytest.raises(ConfigError, match=r"\[live.output_queue_ms\] must be positive"):
        LiveConfig(output_queue_ms=0).validate()


def test_one_config_for_session_and_runner_with_queues_in_whole_blocks() -> None:
    cfg = LiveConfig(block_ms=20.0, jitter_ms=30.0, input_queue_ms=80.0, output_queue_ms=50.0)
    assert (cfg.prefill_blocks(), cfg.input_queue_blocks(), cfg.output_queue_blocks()) == (2, 4, 3)
    assert cfg.block_mode and not LiveConfig(context_ms=40.0).block_mode
    runner = LiveRunner(lambda f: f, cfg)
    assert runner.config is cfg  # the runner runs on the session's own settings, not a copy
    assert runner.input_ring.capacity >= 4 * 960


def test_live_table_then_overrides() -> None:
    cfg = live_config({"block_ms": 20.0, "crossfade_ms": 10.0, "input": "usb"}, {"block_ms": 40.0, "output": None},
                      source="vc.toml")
    assert (cfg.block_ms, cfg.crossfade_ms, cfg.input, cfg.output) == (40.0, 10.0, "usb", "virtual")
    with pytest.raises(ConfigError, match=r"vc.toml: \[live.blok_ms\] unknown key 'blok_ms'"):
        live_config({"blok_ms": 20.0}, {}, source="vc.toml")
    with pytest.raises(ConfigError, match=r"\[live.jitter_ms\]"):
        live_config({}, {"jitter_ms": "lots"}, source="vc.toml")


def test_neural_voices_get_the_neural_block_unless_the_caller_names_one() -> None:
    table = {"block_ms": 10.0}
    assert live_config(table, {}, source="vc.toml", neural=True).block_ms == NEURAL_BLOCK_MS
    assert live_config(table, {"block_ms": None}, source="vc.toml", neural=True).block_ms == NEURAL_BLOCK_MS
    assert live_config(table, {"block_ms": 100.0}, source="vc.toml", neural=True).block_ms == 100.0
    assert live_config(table, {}, source="vc.toml").block_ms == 10.0
