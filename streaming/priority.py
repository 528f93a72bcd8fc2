"""Scheduling priority for the live path's threads: real time for the audio callback, raised for the worker.

A streamer's PC keeps both cores busy (OBS, a browser, a game). At normal priority the audio callback and the
worker wait behind those processes for a time slice, and the output underruns. Linux offers two ways up:

* ``SCHED_FIFO`` / ``SCHED_RR`` through ``sched_setscheduler`` (root, ``CAP_SYS_NICE`` or an ``rtprio`` limit
  in ``/etc/security/limits.d``), and ``nice`` below 0 through ``setpriority`` (root or a ``nice`` limit);
* rtkit (``org.freedesktop.RealtimeKit1`` on the system D-Bus), which desktops run so that unprivileged sound
  programs (PulseAudio, PipeWire) get real time; it is asked through ``busctl`` or ``dbus-send`` when those
  programs exist, with ``RLIMIT_RTTIME`` set first as rtkit requires.

The PortAudio callback thread is PortAudio's: :class:`~anchorvoice.streaming.runner.LiveRunner` calls
:func:`promote_current_thread` once, from inside its first callback (one syscall when it is allowed), and
only records the thread id otherwise; the worker thread then asks rtkit for that thread (a D-Bus round trip
must never run in the audio callback). Every outcome is a :class:`Priority` whose ``text`` goes to the live
status and summary, and whose ``note`` says what to do when the system refused.

Linux applies ``sched_setscheduler(0, ...)`` and ``setpriority(PRIO_PROCESS, tid, ...)`` to one thread, not
the whole process. Elsewhere (macOS, Windows) the functions report "normal" with a note: CoreAudio and WASAPI
already run their callbacks at a raised priority.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import threading
from dataclasses import dataclass

RT_HINT = (
    "to allow it, install rtkit (desktops usually have it) or give your user real-time limits: put "
    "'@audio - rtprio 95' and '@audio - nice -15' into /etc/security/limits.d/95-audio.conf, add yourself to "
    "the audio group (usermod -aG audio $USER) and log in again"
)
"""What a user does when the system refuses real-time scheduling."""
RTKIT_RTTIME_US = 200_000
"""``RLIMIT_RTTIME`` set before asking rtkit (it refuses threads without a limit): a real-time thread that
runs 200 ms without sleeping gets SIGXCPU, which a 10-250 ms audio callback never does."""
RTKIT_TIMEOUT_S = 2.0
"""Longest wait for rtkit's answer (on the worker thread, never in the callback)."""
WORKER_NICE = -10
"""Nice value of the worker when real time is refused or not asked for (weight ~9x a normal process)."""


@dataclass(frozen=True)
class Priority:
    """How one thread is scheduled after an attempt to raise it."""

    text: str
    """For the status line: e.g. 'SCHED_FIFO 20', 'SCHED_RR 10', 'nice -10', 'normal'."""
    raised: bool
    """True when the thread runs above normal priority."""
    note: str | None = None
    """Why it stayed normal and what to do, or None."""


PENDING = Priority("pending (set in the first audio callback)", False)
NOT_ASKED = Priority("normal (not asked: [live] realtime = false)", False)
MAIN_THREAD = Priority("normal (callbacks on the main thread are never promoted)", False)


def _linux() -> bool:
    return hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO")


def promote_current_thread(rt_priority: int) -> tuple[Priority, int]:
    """SCHED_FIFO at ``rt_priority`` for the calling thread; returns (outcome, native thread id).

    One ``sched_setscheduler`` call (the audio callback runs this once); on refusal the thread stays as it
    is and the outcome says so, so that :func:`ask_rtkit` can try from another thread.
    """
    tid = threading.get_native_id()
    if not _linux():
        return Priority("normal", False, "this OS runs audio callbacks at its own raised priority"), tid
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
    except OSError as exc:
        return Priority("normal", False, f"SCHED_FIFO refused ({exc.strerror}); {RT_HINT}"), tid
    return Priority(f"SCHED_FIFO {rt_priority}", True), tid


def ask_rtkit(tid: int, rt_priority: int) -> Priority:
    """Ask rtkit over the system D-Bus to make thread ``tid`` real time (SCHED_RR at ``rt_priority``, capped
    by rtkit's own maximum, usually 20). Blocks up to ``RTKIT_TIMEOUT_S``: call it off the audio thread."""
    tool = shutil.which("busctl") or shutil.which("dbus-send")
    if tool is None:
        return Priority("normal", False, f"real time refused and no D-Bus client (busctl) to ask rtkit; {RT_HINT}")
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_RTTIME)
        if soft == resource.RLIM_INFINITY or soft > RTKIT_RTTIME_US:
            resource.setrlimit(resource.RLIMIT_RTTIME, (RTKIT_RTTIME_US, min(hard, RTKIT_RTTIME_US)
                                                        if hard != resource.RLIM_INFINITY else RTKIT_RTTIME_US))
    except (OSError, ValueError, AttributeError):
        pass  # rtkit will answer with its own reason
    if os.path.basename(tool) == "busctl":
        cmd = [tool, "call", "--system", "org.freedesktop.RealtimeKit1", "/org/freedesktop/RealtimeKit1",
               "org.freedesktop.RealtimeKit1", "MakeThreadRealtime", "tu", str(tid), str(rt_priority)]
    else:
        cmd = [tool, "--system", "--print-reply", "--dest=org.freedesktop.RealtimeKit1",
               "/org/freedesktop/RealtimeKit1", "org.freedesktop.RealtimeKit1.MakeThreadRealtime",
               f"uint64:{tid}", f"uint32:{rt_priority}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=RTKIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Priority("normal", False, f"real time refused and rtkit did not answer ({exc}); {RT_HINT}")
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        reason = why[-1] if why else f"exit {done.returncode}"
        return Priority("normal", False, f"real time refused, rtkit too ({reason}); {RT_HINT}")
    return Priority(f"SCHED_RR {rt_priority} (rtkit)", True)


def raise_worker(rt_priority: int, mode: str) -> Priority:
    """Raise the calling (worker) thread: ``mode`` 'rr' tries SCHED_RR at ``rt_priority`` and falls back to
    nice; 'nice' sets ``WORKER_NICE``; 'normal' leaves it."""
    if mode == "normal":
        return Priority("normal", False)
    if not _linux():
        return Priority("normal", False, "worker priority is only raised on Linux")
    refused: list[str] = []
    if mode == "rr":
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(rt_priority))
            return Priority(f"SCHED_RR {rt_priority}", True)
        except OSError as exc:
            refused.append(f"SCHED_RR refused ({exc.strerror})")
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        return Priority(f"nice {WORKER_NICE}", True, "; ".join(refused) or None)
    except OSError as exc:
        refused.append(f"nice {WORKER_NICE} refused ({exc.strerror})")
    return Priority("normal", False, f"{'; '.join(refused)}; {RT_HINT}")


AUDIO_HELPER_THREADS = ("threaded-ml",)
"""Names of threads the audio stack starts inside our process that move the samples: libpulse's threaded
mainloop ("threaded-ml", one per PulseAudio stream, started by ALSA's pulse plugin under PortAudio). At
normal priority they wait behind busy processes and the callback's real-time priority is wasted."""


def promote_helper_threads(rt_priority: int, names: tuple[str, ...] = AUDIO_HELPER_THREADS) -> Priority | None:
    """SCHED_FIFO at ``rt_priority`` for this process's threads named in ``names`` (Linux ``/proc``); None when
    there are none (no PulseAudio stream, another OS)."""
    task = "/proc/self/task"
    if not _linux() or not os.path.isdir(task):
        return None
    found, raised, refused = 0, 0, ""
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/comm") as fh:
                if fh.read().strip() not in names:
                    continue
        except OSError:  # the thread ended meanwhile
            continue
        found += 1
        try:
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(rt_priority))
            raised += 1
        except OSError as exc:
            refused = exc.strerror or str(exc)
    if not found:
        return None
    if raised == found:
        return Priority(f"{found} audio-stack thread(s) SCHED_FIFO {rt_priority}", True)
    return Priority(f"{raised} of {found} audio-stack thread(s) raised", raised > 0,
                    f"SCHED_FIFO for the sound server's client threads refused ({refused}); {RT_HINT}")


class LiveThreads:
    """The scheduling record of a live runner's threads: the audio callback thread(s) and the worker.

    The audio side is promoted from inside the first capture and the first playback callback after
    :meth:`arm` (:meth:`on_callback`: one flag test per callback, one syscall once), since PortAudio may run
    them on one thread or two. The worker side, while idle, :meth:`settle` s the outcome: it asks rtkit for a
    refused audio thread (never from the callback) and gives the one ``priority`` event to report.
    """

    def __init__(self, realtime: bool, rt_priority: int) -> None:
        self.realtime = realtime
        self.rt_priority = rt_priority
        self._main_ident = threading.main_thread().ident
        self._pending = [False, False]  # capture, playback
        self._audio: list[Priority | None] = [None, None]
        self._tids: list[int | None] = [None, None]
        self._seen_at: float | None = None
        self.reported = False
        self.worker: Priority = NOT_ASKED if not realtime else Priority("normal", False)

    def arm(self) -> None:
        """On start: the next capture and the next playback callback promote their thread."""
        self._pending = [self.realtime, self.realtime]

    def on_callback(self, role: int) -> None:
        """From the audio callback (``role`` 0: capture, 1: playback): the thread's one scheduling call."""
        if not self._pending[role]:
            return
        self._pending[role] = False
        if threading.get_ident() == self._main_ident:
            self._audio[role] = MAIN_THREAD
        else:
            self._audio[role], self._tids[role] = promote_current_thread(self.rt_priority)

    def raise_worker(self, rt_priority: int, mode: str) -> None:
        """From the worker thread when it starts (real time asked for only)."""
        if self.realtime:
            self.worker = raise_worker(rt_priority, mode)

    @property
    def audio(self) -> Priority:
        """How the audio callback thread(s) are scheduled: one outcome, or capture's and playback's."""
        known = [p for p in self._audio if p is not None]
        if not known:
            return PENDING if self.realtime else NOT_ASKED
        if len({p.text for p in known}) == 1:
            return known[0]
        notes = [p.note for p in known if p.note]
        return Priority(f"capture {known[0].text}, playback {known[1].text}", all(p.raised for p in known),
                        "; ".join(notes) or None)

    def settle(self, now: float) -> dict[str, object] | None:
        """Worker side, while idle: once the first callback has tried real time, ask rtkit if it was refused;
        returns the ``priority`` event once (None before it is ready, and after)."""
        if self.reported:
            return None
        if not self.realtime:
            self.reported = True
            return None
        known = [i for i in (0, 1) if self._audio[i] is not None]
        if not known:
            return None
        if self._seen_at is None:
            self._seen_at = now
        if len(known) < 2 and now - self._seen_at < 1.0:  # a second audio thread may still call
            return None
        for i in known:
            first, tid = self._audio[i], self._tids[i]
            if first is not None and not first.raised and tid is not None:
                asked = ask_rtkit(tid, self.rt_priority)
                self._audio[i] = asked if asked.raised else Priority("normal", False, first.note)
        self.reported = True
        return {"event": "priority", "audio": self.audio.text, "worker": self.worker.text, "note": self.note}

    @property
    def note(self) -> str | None:
        """What to do when a live thread stayed at normal priority (None when both were raised)."""
        notes = []
        if self.audio.note:
            notes.append(f"audio thread: {self.audio.note}")
        if self.worker.note and not self.worker.raised:
            notes.append(f"worker: {self.worker.note}")
        return "; ".join(notes) or None
