"""LiveRunner end to end through callback(): block and windowed modes, degradation on errors and slowness,
recovery, the GC freeze."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from anchorvoice.audio_io import resample
from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.runner import LiveRunner

SR = 48000


def windowed(**kw: Any) -> LiveConfig:
    """A windowed-mode configuration (RVC-like: 20 ms blocks, 40 ms context, 10 ms crossfade and search)."""
    base: dict[str, Any] = dict(sample_rate=SR, block_ms=20.0, context_ms=40.0, crossfade_ms=10.0,
                                sola_search_ms=10.0, jitter_ms=20.0, input_queue_ms=160.0, output_queue_ms=80.0)
    return LiveConfig(**{**base, **kw})


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(SR * seconds))).astype(np.float32)


def _drive(runner: LiveRunner, x: np.ndarray, frames: int, channels: int = 0) -> np.ndarray:
    """Feed ``x`` through callback() in device buffers of ``frames``, stepping the worker inline."""
    out = []
    for i in range(0, len(x) - frames + 1, frames):
        chunk = x[i : i + frames]
        if channels:
            indata = np.repeat(chunk[:, None], channels, axis=1)
            outdata = np.full((frames, channels), 9.0, np.float32)
        else:
            indata, outdata = chunk, np.full(frames, 9.0, np.float32)
        runner.callback(indata, outdata)
        while runner.step():
            pass
        if channels:
            assert np.array_equal(outdata[:, 0], outdata[:, -1])
            outdata = outdata[:, 0]
        out.append(outdata.copy())
    return np.concatenate(out)


def _lag(y: np.ndarray, x: np.ndarray, at: int, n: int = 2400, max_lag: int = SR // 2) -> int:
    """L such that y[at:at+n] == x[at-L:at-L+n], by cross-correlation."""
    start = at - max_lag
    c = np.correlate(x[start : at + n], y[at : at + n], "valid")
    return at - (start + int(np.argmax(c)))


def _delayed(x: np.ndarray, d: int, n: int) -> np.ndarray:
    return np.concatenate([np.zeros(d, np.float32), x])[:n]


@pytest.mark.parametrize(("frames", "channels"), [(960, 0), (240, 2), (256, 1), (1920, 1)])
def test_identity_plays_input_delayed_by_the_latency_account(frames: int, channels: int) -> None:
    runner = LiveRunner(lambda f: f, windowed())
    x = _noise(1.0)
    y = _drive(runner, x, frames, channels)
    d = runner.latency.samples(SR)
    assert d == round(0.060 * SR)  # 20 ms block + 10 crossfade + 10 search + 20 jitter buffer
    _check_identity(runner, x, y, frames)


def test_lookahead_and_other_sizes_delay_exactly_as_accounted() -> None:
    cfg = LiveConfig(sample_rate=SR, block_ms=10, lookahead_ms=5, crossfade_ms=5, sola_search_ms=2.5, jitter_ms=20)
    runner = LiveRunner(lambda f: f, cfg)
    x = _noise(0.5, seed=4)
    y = _drive(runner, x, 480)
    assert runner.latency.samples(SR) == round(0.0425 * SR)  # 10 + 5 + 5 + 2.5 + 2 x 10 ms
    _check_identity(runner, x, y, 480)


def _check_identity(runner: LiveRunner, x: np.ndarray, y: np.ndarray, frames: int) -> None:
    d = runner.latency.samples(SR)
    fade = runner.overlap  # the very first block fades in from silence
    if runner.block % frames == 0:
        np.testing.assert_allclose(y[d + fade :], x[fade : len(y) - d], atol=1e-6)
    else:  # a buffer that does not divide the block rounds playback start up to a buffer boundary
        lag = _lag(y, x, SR // 2)
        assert d <= lag <= d + frames
        np.testing.assert_allclose(y[lag + fade :], x[fade : len(y) - lag], atol=1e-6)
    st = runner.stats()
    assert st.underruns == 0 and st.overruns == 0 and st.callback_errors == 0
    assert st.blocks_processed == (len(x) // frames * frames) // runner.block
    assert -15 < st.input_level_db < -13  # 0.2 RMS noise is -14 dBFS


def test_process_returning_another_rate_and_only_the_tail_is_accepted() -> None:
    def at_16k_tail(f: AudioFrame) -> AudioFrame:
        y = resample(f.samples, SR, 16000)
        return AudioFrame(y[len(y) // 2 :], 16000)  # skip the context head, as RVC's decoder does

    runner = LiveRunner(at_16k_tail, windowed(context_ms=60))
    t = np.arange(SR) / SR
    x = (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    y = _drive(runner, x, 960)
    d = runner.latency.samples(SR)
    ref = _delayed(x, d, len(y))
    assert np.max(np.abs(y[SR // 4 :] - ref[SR // 4 :])) < 0.02
    assert runner.stats().errors == 0


class Flaky:
    """Identity at half gain that raises for blocks in ``bad`` (counted by calls)."""

    def __init__(self, bad: range) -> None:
        self.bad, self.calls = bad, 0

    def __call__(self, f: AudioFrame) -> AudioFrame:
        self.calls += 1
        if self.calls - 1 in self.bad:
            raise RuntimeError("model exploded")
        return f.with_samples(0.5 * f.samples)


@pytest.mark.parametrize("policy", ["dry", "silence"])
def test_process_that_raises_degrades_to_bypass_then_recovers(policy: str) -> None:
    events: list[dict[str, Any]] = []
    cfg = windowed(degrade_policy=policy, probe_every_blocks=2, recover_after_probes=3)
    proc = Flaky(range(10, 14))
    runner = LiveRunner(proc, cfg, on_event=events.append)
    x = _noise(2.0)
    y = _drive(runner, x, 960)  # no exception may escape callback() or step()
    assert [e["event"] for e in events] == ["degraded", "recovered"]
    assert events[0]["reason"] == "error" and "model exploded" in events[0]["error"]
    st = runner.stats()
    assert not st.degraded and st.errors == 4 and st.callback_errors == 0 and st.underruns == 0
    assert st.last_error == "RuntimeError: model exploded"
    # Blocks 10..~19 are bypass: dry plays the input at full gain, silence plays zeros.
    d = runner.latency.samples(SR)
    ref = _delayed(x, d, len(y))
    B = runner.block
    mid = slice(d + 12 * B, d + 15 * B)
    if policy == "dry":
        np.testing.assert_allclose(y[mid], ref[mid], atol=1e-6)
    else:
        assert np.all(y[mid] == 0.0)
    late = slice(d + 30 * B, len(y))  # converted again after recovery
    np.testing.assert_allclose(y[late], 0.5 * ref[late], atol=1e-6)
    assert st.blocks_bypassed == events[1]["bypassed_blocks"]


def test_slow_process_degrades_after_n_blocks_and_recovers_when_fast_again() -> None:
    now = [0.0]
    block_s = 0.020
    calls = [0]

    def slow_then_fast(f: AudioFrame) -> AudioFrame:
        calls[0] += 1
        now[0] += 1.5 * block_s if 5 <= calls[0] <= 20 else 0.1 * block_s  # fake compute time
        return f

    events: list[dict[str, Any]] = []
    cfg = windowed(degrade_after_blocks=4, probe_every_blocks=1, recover_after_probes=2)
    runner = LiveRunner(slow_then_fast, cfg, on_event=events.append, clock=lambda: now[0])
    _drive(runner, _noise(1.5), 960)
    assert [e["event"] for e in events] == ["degraded", "recovered"]
    assert events[0]["reason"] == "slow" and events[0]["rtf"] == pytest.approx(1.5)
    assert events[0]["block"] == 7  # calls 5, 6, 7, 8 are slow: the fourth (block index 7) trips it
    assert events[1]["rtf"] == pytest.approx(0.1)
    st = runner.stats()
    assert not st.degraded and st.underruns == 0 and st.errors == 0
    assert st.compute_ms_max == pytest.approx(30.0)  # 1.5 x the 20 ms block


def test_worker_thread_with_side_probes_recovers_and_keeps_callback_safe() -> None:
    events: list[dict[str, Any]] = []
    got_event = threading.Event()

    def listener(e: dict[str, Any]) -> None:
        events.append(e)
        if e["event"] == "recovered":
            got_event.set()
        raise RuntimeError("a broken listener must not stop the stream")

    cfg = windowed(probe_every_blocks=1, recover_after_probes=2)
    with LiveRunner(Flaky(range(3, 6)), cfg, on_event=listener) as runner:
        x = _noise(1.0)
        out = np.zeros(480, np.float32)
        for i in range(0, len(x) - 480, 480):  # 10 ms buffers, paced by the worker's progress
            runner.callback(x[i : i + 480], out)
            deadline = time.monotonic() + 5
            while runner.input_ring.available() >= runner.block and time.monotonic() < deadline:
                time.sleep(0.0005)
        assert got_event.wait(5)
        st = runner.stats()
        assert st.worker_alive and st.callback_errors == 0 and not st.degraded
    # (jitter and priority events may come in between: they describe the stream, not the converter)
    assert [e["event"] for e in events if e["event"] in ("degraded", "recovered")] == ["degraded", "recovered"]
    assert not runner.stats().worker_alive


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda f: f.with_samples(f.samples[:10]), "must return at least the newest"),
        (lambda f: f.with_samples(np.full_like(f.samples, np.nan)), "NaN or infinite"),
    ],
)
def test_unusable_output_is_an_error_with_a_clear_message(bad: Any, message: str) -> None:
    events: list[dict[str, Any]] = []
    runner = LiveRunner(bad, windowed(), events.append)
    y = _drive(runner, _noise(0.2), 960)
    assert events[0]["reason"] == "error"
    assert message in events[0]["error"]
    assert np.isfinite(y).all() and np.abs(y).max() > 0.1  # dry bypass plays, never NaN


def test_callback_survives_bad_buffers() -> None:
    runner = LiveRunner(lambda f: f, windowed())
    out = np.ones(64, np.float32)
    runner.callback(np.zeros((64, 2, 2), np.float32), out)  # nonsense input shape
    assert runner.callback_errors == 1 and np.all(out == 0.0)
    runner.callback(None, np.zeros(64, np.float32))  # output-only stream
    runner.callback(np.zeros(64, np.float32), None)  # input-only stream
    assert runner.callback_errors == 1


def test_invalid_config_is_refused_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match=r"\[live.crossfade_ms\] must be <= 40 ms"):
        LiveRunner(lambda f: f, LiveConfig(crossfade_ms=50))
    with pytest.raises(ConfigError, match="degrade_policy"):
        LiveRunner(lambda f: f, LiveConfig(degrade_policy="loud"))  # type: ignore[arg-type]


def test_warmup_runs_process_on_silence_before_the_stream() -> None:
    seen: list[AudioFrame] = []

    def record(f: AudioFrame) -> AudioFrame:
        seen.append(f)
        return f

    runner = LiveRunner(record, windowed())
    assert runner.warmup(blocks=2) >= 0.0
    assert runner.window_size == round(0.080 * SR)  # 40 context + 10 crossfade + 10 search + 20 block
    assert len(seen) == 2 and all(len(f.samples) == runner.window_size and not f.samples.any() for f in seen)
    # A converter that cannot run at all fails warm-up loudly instead of starting in bypass.
    broken = LiveRunner(lambda f: f.with_samples(f.samples[:5]), windowed())
    with pytest.raises(ValueError, match="must return at least"):
        broken.warmup()


def test_worker_stall_drops_oldest_output_so_latency_stays_bounded() -> None:
    cfg = windowed()
    runner = LiveRunner(lambda f: f, cfg)
    x = _noise(1.0)
    B, frames = runner.block, 960
    out = []
    for k in range(len(x) // frames):
        o = np.zeros(frames, np.float32)
        runner.callback(x[k * frames : (k + 1) * frames], o)
        if not 10 <= k < 17:  # the worker stalls for 7 blocks (140 ms), then catches up at once
            while runner.step():
                pass
        out.append(o)
    y = np.concatenate(out)
    st = runner.stats()
    assert st.underruns > 0  # the stall starves the output: counted, not hidden
    assert st.dropped_samples > 0  # the burst after it is left out (what arrived late), not queued
    assert runner.output_ring.available() <= runner.output_ring.capacity
    # After the stall the delay is back within the jitter buffer + output queue bound.
    d = runner.latency.samples(SR)
    lag = _lag(y, x, len(y) - SR // 10)
    assert d <= lag <= d + cfg.output_queue_blocks() * B


def test_callback_allocates_no_sample_memory() -> None:
    import tracemalloc

    runner = LiveRunner(lambda f: f, windowed())
    frames = 960
    indata = np.repeat(_noise(0.02)[:, None], 2, axis=1)
    outdata = np.zeros((frames, 2), np.float32)
    for _ in range(10):  # warm up: rings primed, first-call caches filled
        runner.callback(indata, outdata)
        while runner.step():
            pass
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(50):
            runner.callback(indata, outdata)
            runner.output_ring.write(indata[:, 0])  # keep the output side fed
            runner.input_ring.discard()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # One stereo buffer is 7,680 bytes: the callback must stay far below a single sample copy.
    assert peak < 2048, f"callback allocated up to {peak} bytes"
    assert runner.stats().underruns == 0


class Recorder:
    """Identity that keeps a copy of every frame it is given."""

    def __init__(self) -> None:
        self.frames: list[AudioFrame] = []

    def __call__(self, f: AudioFrame) -> AudioFrame:
        self.frames.append(AudioFrame(f.samples.copy(), f.sample_rate, f.timestamp))
        return f


@pytest.mark.parametrize("frames", [480, 256, 160])
def test_block_mode_feeds_exactly_the_captured_samples_in_order(frames: int) -> None:
    rec = Recorder()
    runner = LiveRunner(rec, LiveConfig(sample_rate=SR))  # the live defaults: 10 ms blocks, nothing else
    assert runner.block_mode and runner.chunker is None and runner.joiner is None  # no window, no SOLA
    x = _noise(1.0, seed=7)
    y = _drive(runner, x, frames)
    B = runner.block
    assert runner.window_size == B and all(len(f.samples) == B for f in rec.frames)
    fed = np.concatenate([f.samples for f in rec.frames])
    np.testing.assert_array_equal(fed, x[: len(fed)])  # every captured sample once, in order
    assert len(fed) == (len(x) // frames * frames) // B * B
    assert [f.timestamp for f in rec.frames] == [k * B / SR for k in range(len(rec.frames))]
    d = runner.latency.samples(SR)
    assert d == round(0.030 * SR)  # 10 ms block + 20 ms jitter buffer: no crossfade or search
    _check_identity(runner, x, y, frames)


def test_block_mode_refuses_a_short_answer() -> None:
    events: list[dict[str, Any]] = []
    runner = LiveRunner(lambda f: f.with_samples(f.samples[:-1]), LiveConfig(sample_rate=SR), events.append)
    _drive(runner, _noise(0.1), 480)
    assert events[0]["reason"] == "error" and "must return at least the newest 480" in events[0]["error"]


def _dsp() -> Any:
    from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter

    conv = DspVoiceConverter(DspConfig(pitch_semitones=4.0, formant_ratio=1.0))
    conv.prepare(None)
    return conv


def _voiced(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(0.3 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 6))
    return (tone + 0.01 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def test_dsp_converter_in_block_mode_plays_exactly_its_direct_conversion() -> None:
    # The runner adds nothing but delay: its output is the converter fed block by block directly,
    # delayed by the block and the jitter buffer (as before block mode, when a window of exactly one
    # block was assembled, converted and cut again).
    from anchorvoice.streaming.converter_stream import ConverterProcess

    cfg = LiveConfig(sample_rate=SR)
    B = cfg.samples(cfg.block_ms)
    runner = LiveRunner(ConverterProcess(_dsp(), SR, B), cfg)
    x = _voiced(1.0)
    y = _drive(runner, x, 480)
    direct = ConverterProcess(_dsp(), SR, B)
    ref = np.concatenate([direct(AudioFrame(x[i : i + B], SR)).samples for i in range(0, len(x) - B + 1, B)])
    d = runner.latency.samples(SR)
    np.testing.assert_array_equal(y[d:], ref[: len(y) - d])
    assert not y[:d].any()


def test_real_dsp_converter_runs_through_the_runner() -> None:
    # The embedded DSP converter (pitch +4 semitones) behind ConverterProcess in block mode.
    from anchorvoice.streaming.converter_stream import ConverterProcess

    cfg = LiveConfig(sample_rate=SR, block_ms=20.0)
    runner = LiveRunner(ConverterProcess(_dsp(), SR, cfg.samples(cfg.block_ms)), cfg)
    runner.warmup()
    x = _voiced(1.5)
    y = _drive(runner, x, 960)[SR // 2 :]
    st = runner.stats()
    assert st.errors == 0 and st.underruns == 0 and not st.degraded
    ac = np.correlate(y[:9600], y[:4800], "valid")  # ac[k] = sum y[n + k] y[n]
    lag = 48 + int(np.argmax(ac[48:480]))  # f0 between 100 and 1000 Hz
    assert SR / lag == pytest.approx(150 * 2 ** (4 / 12), rel=0.03)


def test_start_freezes_the_cyclic_gc_and_stop_undoes_it() -> None:
    import gc

    before = gc.get_freeze_count()
    with LiveRunner(lambda f: f, LiveConfig(sample_rate=SR)):
        assert gc.get_freeze_count() > before  # loaded objects are out of the full collections' way
    assert gc.get_freeze_count() == 0
    with LiveRunner(lambda f: f, LiveConfig(sample_rate=SR, freeze_gc=False)):
        assert gc.get_freeze_count() == 0
