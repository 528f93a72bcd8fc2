"""Real-time priority of the live threads: asked once from the first audio callback, never for the main
thread, rtkit asked off the audio thread when refused, and the outcome (with what to do) in the stats."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
import pytest

from anchorvoice.streaming import priority
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.runner import LiveRunner


def _run_callbacks(runner: LiveRunner, n: int) -> None:
    """``n`` capture and ``n`` playback callbacks from two threads that are not the main thread, as
    PortAudio runs separate input and output streams."""

    def capture() -> None:
        for _ in range(n):
            runner.callback(np.zeros(480, np.float32), None)

    def playback() -> None:
        for _ in range(n):
            runner.callback(None, np.zeros(480, np.float32))

    threads = [threading.Thread(target=capture), threading.Thread(target=playback)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _wait_event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for e in events:
            if e["event"] == name:
                return e
        time.sleep(0.01)
    raise AssertionError(f"no {name} event in {events}")


def test_first_callback_asks_once_and_a_refusal_asks_rtkit_and_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def refuse(policy: int, param: Any) -> None:
        calls.append("sched")
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(priority.os, "sched_setscheduler", lambda pid, policy, param: refuse(policy, param))
    monkeypatch.setattr(priority.os, "setpriority", lambda *a: None)
    asked: list[tuple[int, int]] = []

    def rtkit(tid: int, prio: int) -> priority.Priority:
        asked.append((tid, prio))
        return priority.Priority("normal", False, "rtkit: not running")

    monkeypatch.setattr(priority, "ask_rtkit", rtkit)
    events: list[dict[str, Any]] = []
    runner = LiveRunner(lambda f: f, LiveConfig(sample_rate=48000, rt_priority=30), on_event=events.append)
    with runner:
        _run_callbacks(runner, 50)
        event = _wait_event(events, "priority")
    # one per audio thread (in its first callback only), one for the worker's SCHED_RR
    assert calls.count("sched") == 3
    assert len(asked) == 2 and len({tid for tid, _ in asked}) == 2 and {p for _, p in asked} == {30}
    st = runner.stats()
    assert st.audio_priority == "normal" and st.worker_priority == "nice -10"
    assert st.priority_note is not None and "/etc/security/limits.d" in st.priority_note
    assert "rtprio" in st.priority_note
    assert event["audio"] == "normal" and event["note"] == st.priority_note


def test_allowed_real_time_is_reported_and_the_main_thread_is_never_promoted(monkeypatch: pytest.MonkeyPatch) -> None:
    set_for: list[tuple[int, int, int]] = []
    monkeypatch.setattr(priority.os, "sched_setscheduler",
                        lambda pid, policy, param: set_for.append((threading.get_native_id(), policy,
                                                                   param.sched_priority)))
    events: list[dict[str, Any]] = []
    runner = LiveRunner(lambda f: f, LiveConfig(sample_rate=48000), on_event=events.append)
    with runner:
        _run_callbacks(runner, 10)
        _wait_event(events, "priority")
    st = runner.stats()
    assert st.audio_priority == "SCHED_FIFO 20" and st.worker_priority == "SCHED_RR 10"
    assert st.priority_note is None
    assert sorted((p, n) for _, p, n in set_for) == sorted([(os.SCHED_FIFO, 20)] * 2 + [(os.SCHED_RR, 10)])
    assert len({tid for tid, _, _ in set_for}) == 3  # capture, playback and worker threads
    assert threading.get_native_id() not in {tid for tid, _, _ in set_for}

    set_for.clear()
    main = LiveRunner(lambda f: f, LiveConfig(sample_rate=48000, worker_priority="normal"))
    with main:
        main.callback(np.zeros(480, np.float32), np.zeros(480, np.float32))  # from the main thread
    assert set_for == [] and "main thread" in main.stats().audio_priority


def test_realtime_false_touches_no_scheduling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priority.os, "sched_setscheduler", lambda *a: pytest.fail("scheduling changed"))
    monkeypatch.setattr(priority.os, "setpriority", lambda *a: pytest.fail("nice changed"))
    runner = LiveRunner(lambda f: f, LiveConfig(sample_rate=48000, realtime=False))
    with runner:
        _run_callbacks(runner, 5)
        time.sleep(0.05)
    st = runner.stats()
    assert "not asked" in st.audio_priority and "not asked" in st.worker_priority


def test_worker_falls_back_from_rr_to_nice_to_normal_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(priority.os, "sched_setscheduler", refuse)
    monkeypatch.setattr(priority.os, "setpriority", refuse)
    got = priority.raise_worker(10, "rr")
    assert not got.raised and got.text == "normal"
    assert got.note is not None and "SCHED_RR refused" in got.note and "limits.d" in got.note
    assert priority.raise_worker(10, "normal").text == "normal"


def test_rtkit_without_a_dbus_client_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priority.shutil, "which", lambda name: None)
    got = priority.ask_rtkit(1234, 20)
    assert not got.raised and got.note is not None and "rtkit" in got.note and "limits.d" in got.note


def test_bad_priority_settings_name_the_field() -> None:
    from anchorvoice.errors import ConfigError

    with pytest.raises(ConfigError, match="rt_priority"):
        LiveConfig(rt_priority=0).validate()
    with pytest.raises(ConfigError, match="worker_priority"):
        LiveConfig(worker_priority="max").validate()  # type: ignore[arg-type]


def test_the_sound_stacks_own_threads_are_raised_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpulse's "threaded-ml" threads carry every sample between PortAudio and the sound server: found by
    name in /proc and raised like the callback (here a thread named like one)."""
    import ctypes

    named = threading.Event()
    done = threading.Event()
    tids: list[int] = []

    def helper() -> None:
        ctypes.CDLL(None).prctl(15, b"av-test-ml", 0, 0, 0)  # PR_SET_NAME
        tids.append(threading.get_native_id())
        named.set()
        done.wait(5)

    t = threading.Thread(target=helper)
    t.start()
    named.wait(5)
    set_for: list[tuple[int, int]] = []
    monkeypatch.setattr(priority.os, "sched_setscheduler", lambda pid, policy, param: set_for.append((pid, policy)))
    try:
        got = priority.promote_helper_threads(20, names=("av-test-ml",))
        assert priority.promote_helper_threads(20, names=("no-such-thread",)) is None
    finally:
        done.set()
        t.join()
    assert set_for == [(tids[0], os.SCHED_FIFO)]
    assert got is not None and got.raised and got.text == "1 audio-stack thread(s) SCHED_FIFO 20"
