"""LiveRunner end to end through callback(): identity, degradation on errors and slowness, recovery."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from anchorvoice.engine.runner import LiveRunner, RunnerConfig, StageStreams
from anchorvoice.errors import ConfigError, DeviceError
from anchorvoice.frames import AudioFrame
from anchorvoice.streaming.resample import resample

SR = 48000


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
    runner = LiveRunner(lambda f: f, RunnerConfig(sample_rate=SR))
    x = _noise(1.0)
    y = _drive(runner, x, frames, channels)
    d = runner.latency.samples(SR)
    assert d == round(0.060 * SR)  # 20 ms block + 10 crossfade + 10 search + 20 jitter buffer
    _check_identity(runner, x, y, frames)


def test_lookahead_and_other_sizes_delay_exactly_as_accounted() -> None:
    cfg = RunnerConfig(sample_rate=SR, block_ms=10, context_ms=0, lookahead_ms=5, crossfade_ms=5,
                       sola_search_ms=2.5, prefill_blocks=2)
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

    runner = LiveRunner(at_16k_tail, RunnerConfig(sample_rate=SR, context_ms=60))
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
    cfg = RunnerConfig(sample_rate=SR, degrade_policy=policy, probe_every_blocks=2, recover_after_probes=3)
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
    cfg = RunnerConfig(sample_rate=SR, degrade_after_blocks=4, probe_every_blocks=1, recover_after_probes=2)
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

    cfg = RunnerConfig(sample_rate=SR, probe_every_blocks=1, recover_after_probes=2)
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
    assert [e["event"] for e in events] == ["degraded", "recovered"]
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
    runner = LiveRunner(bad, RunnerConfig(sample_rate=SR), events.append)
    y = _drive(runner, _noise(0.2), 960)
    assert events[0]["reason"] == "error"
    assert message in events[0]["error"]
    assert np.isfinite(y).all() and np.abs(y).max() > 0.1  # dry bypass plays, never NaN


def test_callback_survives_bad_buffers() -> None:
    runner = LiveRunner(lambda f: f, RunnerConfig(sample_rate=SR))
    out = np.ones(64, np.float32)
    runner.callback(np.zeros((64, 2, 2), np.float32), out)  # nonsense input shape
    assert runner.callback_errors == 1 and np.all(out == 0.0)
    runner.callback(None, np.zeros(64, np.float32))  # output-only stream
    runner.callback(np.zeros(64, np.float32), None)  # input-only stream
    assert runner.callback_errors == 1


def test_invalid_config_is_refused_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match=r"\[live.crossfade_ms\] must be <= 40 ms"):
        LiveRunner(lambda f: f, RunnerConfig(crossfade_ms=50))
    with pytest.raises(ConfigError, match="degrade_policy"):
        LiveRunner(lambda f: f, RunnerConfig(degrade_policy="loud"))  # type: ignore[arg-type]


def test_stage_streams_are_no_ops_on_cpu() -> None:
    streams = StageStreams(["extract", "decode"], device="cpu")
    assert not streams.enabled
    with streams.use("extract"):
        streams.record("extract")
        streams.wait("decode", before="extract")
    streams.synchronize()
    import torch

    assert StageStreams(["decode"], device="auto").enabled == torch.cuda.is_available()

    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            StageStreams(["decode"], device="cuda")


def test_warmup_runs_process_on_silence_before_the_stream() -> None:
    seen: list[AudioFrame] = []

    def record(f: AudioFrame) -> AudioFrame:
        seen.append(f)
        return f

    runner = LiveRunner(record, RunnerConfig(sample_rate=SR))
    assert runner.warmup(blocks=2) >= 0.0
    assert len(seen) == 2 and all(len(f.samples) == runner.window_size and not f.samples.any() for f in seen)
    # A converter that cannot run at all fails warm-up loudly instead of starting in bypass.
    broken = LiveRunner(lambda f: f.with_samples(f.samples[:5]), RunnerConfig(sample_rate=SR))
    with pytest.raises(ValueError, match="must return at least"):
        broken.warmup()


def test_worker_stall_drops_oldest_output_so_latency_stays_bounded() -> None:
    cfg = RunnerConfig(sample_rate=SR)
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
    assert st.overruns > 0  # the burst after it overflows the output queue: oldest dropped
    assert runner.output_ring.available() <= runner.output_ring.capacity
    # After the stall the delay is back within the jitter buffer + output queue bound.
    d = runner.latency.samples(SR)
    lag = _lag(y, x, len(y) - SR // 10)
    assert d <= lag <= d + cfg.output_queue_blocks * B


def test_callback_allocates_no_sample_memory() -> None:
    import tracemalloc

    runner = LiveRunner(lambda f: f, RunnerConfig(sample_rate=SR))
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


def test_real_dsp_converter_runs_through_the_runner() -> None:
    # The embedded DSP converter (pitch +4 semitones) behind ConverterProcess: a stateful stage
    # fed block by block; its answers continue each other, so SOLA never has to jump.
    from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter
    from anchorvoice.streaming.converter_stream import ConverterProcess

    conv = DspVoiceConverter(DspConfig(pitch_semitones=4.0, formant_ratio=1.0))
    conv.prepare(None)
    cfg = RunnerConfig(sample_rate=SR)
    runner = LiveRunner(ConverterProcess(conv, SR, cfg.samples(cfg.block_ms)), cfg)
    runner.warmup()
    t = np.arange(int(1.5 * SR)) / SR
    x = sum(0.3 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 6)).astype(np.float32)
    offsets = []
    out = []
    for i in range(0, len(x) - 960 + 1, 960):
        o = np.zeros(960, np.float32)
        runner.callback(x[i : i + 960], o)
        while runner.step():
            offsets.append(runner.joiner.last_offset)
        out.append(o)
    y = np.concatenate(out)[SR // 2 :]
    st = runner.stats()
    assert st.errors == 0 and st.underruns == 0 and not st.degraded
    assert set(offsets[10:]) == {0}
    ac = np.correlate(y[:9600], y[:4800], "valid")  # ac[k] = sum y[n + k] y[n]
    lag = 48 + int(np.argmax(ac[48:480]))  # f0 between 100 and 1000 Hz
    assert SR / lag == pytest.approx(150 * 2 ** (4 / 12), rel=0.03)


def test_start_freezes_the_cyclic_gc_and_stop_undoes_it() -> None:
    import gc

    before = gc.get_freeze_count()
    with LiveRunner(lambda f: f, RunnerConfig(sample_rate=SR)):
        assert gc.get_freeze_count() > before  # loaded objects are out of the full collections' way
    assert gc.get_freeze_count() == 0
    with LiveRunner(lambda f: f, RunnerConfig(sample_rate=SR, freeze_gc=False)):
        assert gc.get_freeze_count() == 0
