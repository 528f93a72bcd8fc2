"""The runner's adaptive jitter buffer, sans I/O: an underrun grows it by a block (and the latency the
listener hears by as much), a quiet calm period shrinks it back, and it stays within its bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from anchorvoice.errors import ConfigError
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.runner import LiveRunner

SR = 48000
B = 480  # 10 ms blocks and device buffers


def _runner(events: list[dict[str, Any]], **kw: Any) -> LiveRunner:
    cfg = LiveConfig(sample_rate=SR, block_ms=10.0, jitter_ms=20.0, jitter_max_ms=40.0, jitter_shrink_after_s=0.5,
                     **kw)
    return LiveRunner(lambda f: f, cfg, on_event=events.append)


def _tick(runner: LiveRunner, x: np.ndarray, *, work: bool = True) -> np.ndarray:
    """One device period: the callback, then (unless the worker stalls) the worker catches up."""
    out = np.zeros(B, np.float32)
    runner.callback(x, out)
    while work and runner.step():
        pass
    return out


def _delay(runner: LiveRunner, loud: bool = True) -> int:
    """Samples between a click going in and coming out, with the stream in its current state."""
    x = np.full(B, 0.05 if loud else 0.0, np.float32)
    click = x.copy()
    click[0] = 1.0
    _tick(runner, click)
    for k in range(1, 20):
        out = _tick(runner, x)
        hit = np.nonzero(out > 0.5)[0]
        if len(hit):
            return k * B + int(hit[0])
    raise AssertionError("the click never came out")


def test_underrun_grows_by_a_block_and_a_calm_quiet_period_shrinks_it_back() -> None:
    events: list[dict[str, Any]] = []
    runner = _runner(events)
    loud = np.full(B, 0.05, np.float32)  # -26 dBFS: speech, never cut
    for _ in range(10):
        _tick(runner, loud)
    st = runner.stats()
    assert st.underruns == 0 and st.jitter_buffer_ms == 20.0
    base_total, base_delay = st.total_latency_ms, _delay(runner)

    for _ in range(4):  # the worker is descheduled for 40 ms: the output starves
        _tick(runner, loud, work=False)
    _tick(runner, loud)
    st = runner.stats()
    assert st.underruns > 0
    assert st.jitter_buffer_ms == 30.0 and st.jitter_grows == 1 and st.jitter_peak_ms == 30.0
    assert st.total_latency_ms == base_total + 10.0  # the cost is reported
    assert _delay(runner) >= base_delay + B  # ... and it is what the listener gets
    assert [e for e in events if e["event"] == "jitter"][0]["reason"] == "underrun"
    under = st.underruns
    for _ in range(3):  # the same stall again now fits in the larger buffer
        _tick(runner, loud, work=False)
    _tick(runner, loud)
    assert runner.stats().underruns == under

    for _ in range(80):  # calm for longer than jitter_shrink_after_s, but speech all along: kept
        _tick(runner, loud)
    assert runner.stats().jitter_buffer_ms == 30.0
    silence = np.zeros(B, np.float32)
    for _ in range(3):  # the first pause gives the block back
        _tick(runner, silence)
    st = runner.stats()
    assert st.jitter_buffer_ms == 20.0 and st.jitter_shrinks == 1 and st.total_latency_ms == base_total
    assert st.underruns == under  # shrinking starved nothing
    assert _delay(runner, loud=False) == base_delay
    assert [e["reason"] for e in events if e["event"] == "jitter"] == ["underrun", "quiet"]
    for _ in range(200):  # never below jitter_ms
        _tick(runner, silence)
    assert runner.stats().jitter_buffer_ms == 20.0


def test_the_jitter_buffer_stays_within_jitter_max_ms() -> None:
    events: list[dict[str, Any]] = []
    runner = _runner(events)
    loud = np.full(B, 0.05, np.float32)
    for _ in range(5):
        _tick(runner, loud)
    for _ in range(6):  # six long stalls in a row
        for _ in range(8):
            _tick(runner, loud, work=False)
        _tick(runner, loud)
    st = runner.stats()
    assert st.jitter_buffer_ms == 40.0 and st.jitter_peak_ms == 40.0 and st.jitter_grows == 2
    assert runner.output_ring.available() <= runner.output_ring.capacity


def test_jitter_max_equal_to_jitter_ms_turns_adaptation_off() -> None:
    events: list[dict[str, Any]] = []
    runner = LiveRunner(lambda f: f, LiveConfig(sample_rate=SR, block_ms=10.0, jitter_ms=20.0, jitter_max_ms=20.0),
                        on_event=events.append)
    loud = np.full(B, 0.05, np.float32)
    for _ in range(5):
        _tick(runner, loud)
    for _ in range(5):
        _tick(runner, loud, work=False)
    _tick(runner, loud)
    st = runner.stats()
    assert st.underruns > 0 and st.jitter_buffer_ms == 20.0 and st.jitter_grows == 0
    assert not [e for e in events if e["event"] == "jitter"]


@pytest.mark.parametrize(("field", "value"), [("jitter_max_ms", 10.0), ("jitter_max_ms", 5000.0),
                                              ("jitter_shrink_after_s", 0.0)])
def test_bad_jitter_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        LiveConfig(jitter_ms=20.0, **{field: value}).validate()


def test_a_slower_playback_clock_drops_only_its_excess_and_adds_no_silence() -> None:
    """Capture and playback on two clocks (two PulseAudio sinks): playback takes 470 samples per 480
    captured, so the output queue overflows by 10 samples a period. The bound drops exactly that; the
    jitter buffer must not read the drops as lost delay and refill it with silence (a feedback loop that
    turned 89 drops into 1117 in 20 s through PulseAudio)."""
    events: list[dict[str, Any]] = []
    runner = _runner(events)
    x = np.full(B, 0.05, np.float32)
    ticks = 600
    for _ in range(ticks):
        runner.callback(x, None)
        out = np.zeros(470, np.float32)
        runner.callback(None, out)
        while runner.step():
            pass
    st = runner.stats()
    assert st.underruns == 0 and st.jitter_grows == 0
    excess = 10 * ticks
    assert excess - runner.output_ring.capacity <= runner.output_ring.overrun_samples <= excess
    assert not [e for e in events if e["event"] == "jitter"]


def test_an_underrun_soon_after_a_shrink_makes_the_next_shrink_wait_twice_as_long() -> None:
    events: list[dict[str, Any]] = []
    runner = _runner(events)  # shrink after 0.5 s = 50 calm blocks
    silence = np.zeros(B, np.float32)

    def stall() -> None:
        for _ in range(4):
            _tick(runner, silence, work=False)
        _tick(runner, silence)

    for _ in range(5):
        _tick(runner, silence)
    stall()
    for _ in range(51):
        _tick(runner, silence)
    assert runner.stats().jitter_shrinks == 1
    stall()  # the load is back: the shrink was premature
    for _ in range(60):  # more than 50 calm blocks, fewer than 100: no shrink yet
        _tick(runner, silence)
    assert runner.stats().jitter_shrinks == 1 and runner.stats().jitter_buffer_ms == 30.0
    for _ in range(45):
        _tick(runner, silence)
    st = runner.stats()
    assert st.jitter_shrinks == 2 and st.jitter_buffer_ms == 20.0
