"""Drive a stateful block converter from the live runner's block mode.

A voice converter is a stream processor (:class:`StreamConverter`): ``process(block)`` keeps its own
history and returns the same number of samples, delayed by ``latency_samples``. The runner's block mode
(:class:`anchorvoice.streaming.runner.LiveRunner` with context, lookahead, crossfade and search all 0)
hands ``process`` exactly each new block of captured samples, so :class:`ConverterProcess` resamples that
block to the converter's rate with a stateful FIR (:class:`LiveResampler`), converts it, resamples it back
and answers with exactly one block of the continuous output stream: no window, no cutting, no SOLA.

Why not soxr's stream mode here: ``soxr.ResampleStream`` at HQ returns output in bursts (0, 0, 0,
490 samples for four 10 ms blocks 48->16 kHz, measured), which would need a ~40 ms queue; a short
windowed-sinc FIR has a steady output and a 1 ms group delay.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from scipy.signal import firwin, lfilter

from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame, FloatArray

TAPS_PER_PHASE = 32
"""FIR length per polyphase branch: 97 taps at 48 kHz for 48<->16 kHz, 1 ms group delay and a
~1.6 kHz transition band (Hamming window: width ~3.3/N of the rate), enough for speech."""


class StreamConverter(Protocol):
    """What :class:`ConverterProcess` calls on a converter (``anchorvoice.engine.stages.VoiceConverter`` is one)."""

    @property
    def name(self) -> str:
        """Shown in error messages."""

    @property
    def sample_rate(self) -> int:
        """Rate of the blocks ``process`` takes and returns, in Hz."""

    @property
    def latency_samples(self) -> int:
        """Delay of ``process``'s output behind its input, in samples at ``sample_rate``."""

    def process(self, block: AudioFrame) -> AudioFrame:
        """Convert one block, keeping history across calls; returns as many samples as it got."""

    def reset(self) -> None:
        """Forget all history (a new stream starts)."""


class LiveResampler:
    """Stateful rational resampler (upsample by L, FIR low-pass, keep every M-th sample)."""

    def __init__(self, sr_in: int, sr_out: int) -> None:
        if sr_in <= 0 or sr_out <= 0:
            raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
        g = math.gcd(sr_in, sr_out)
        self.up, self.down = sr_out // g, sr_in // g
        self.sr_in, self.sr_out = sr_in, sr_out
        if self.up * self.down > 64:
            raise ValueError(f"{sr_in} -> {sr_out} Hz is not a small rational ratio (L={self.up}, M={self.down})")
        n = TAPS_PER_PHASE * max(self.up, self.down) + 1
        # Cut-off at 90 % of the lower Nyquist, relative to the upsampled rate's Nyquist.
        self._h = (firwin(n, 0.9 / max(self.up, self.down)) * self.up).astype(np.float64)
        self._zi = np.zeros(n - 1)
        self._phase = 0
        self.delay_out = (n - 1) / 2 / self.down
        """Group delay in output samples."""

    def reset(self) -> None:
        self._zi[:] = 0.0
        self._phase = 0

    def process(self, x: FloatArray) -> FloatArray:
        if self.up == self.down:
            return np.asarray(x, dtype=np.float32).copy()
        stuffed = np.zeros(len(x) * self.up)
        stuffed[:: self.up] = x
        y, self._zi = lfilter(self._h, 1.0, stuffed, zi=self._zi)
        out = y[self._phase :: self.down]
        self._phase = (self._phase - len(stuffed)) % self.down
        return out.astype(np.float32)


class ConverterProcess:
    """``process(block) -> block`` for the runner's block mode, backed by a stateful converter.

    ``block`` is the runner's block in device samples; every call must hand exactly that many. Output is
    delayed by ``latency_ms`` beyond the runner's own algorithmic latency (converter + resampling + a
    small queue that absorbs the resamplers' +-1 sample jitter per block).
    """

    def __init__(self, converter: StreamConverter, sample_rate: int, block: int) -> None:
        self.converter = converter
        self.sample_rate = sample_rate
        self.block = block
        try:
            self._to_conv = LiveResampler(sample_rate, converter.sample_rate)
            self._from_conv = LiveResampler(converter.sample_rate, sample_rate)
        except ValueError as exc:
            raise ConfigError(
                f"live sample_rate {sample_rate} Hz cannot be resampled to the {converter.name!r} converter's "
                f"{converter.sample_rate} Hz block by block ({exc}); use 48000 (set [live] sample_rate)",
                key="live.sample_rate",
            ) from None
        # A few samples of queue so that each answer can advance by exactly ``block``.
        self._slack = 2 * max(self._to_conv.up, self._to_conv.down, 1) + 2
        self._fifo: FloatArray = np.zeros(self._slack, np.float32)

    @property
    def latency_samples(self) -> int:
        """Delay added on top of the runner's algorithmic latency, in device samples."""
        conv = self.converter.latency_samples * self.sample_rate / self.converter.sample_rate
        resample = self._to_conv.delay_out * self.sample_rate / self.converter.sample_rate + self._from_conv.delay_out
        return int(round(conv + resample)) + self._slack

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    def warm_up(self, seconds: float = 0.5) -> None:
        """Run a little quiet noise through the converter, then reset: JIT compilation (numba) and
        first-call allocations happen here instead of in the first live blocks."""
        rng = np.random.default_rng(0)
        for _ in range(max(1, int(seconds * self.sample_rate / self.block))):
            noise = (rng.standard_normal(self.block) * 0.01).astype(np.float32)
            self(AudioFrame(noise, self.sample_rate))
        self.reset()

    def reset(self) -> None:
        self.converter.reset()
        self._to_conv.reset()
        self._from_conv.reset()
        self._fifo = np.zeros(self._slack, np.float32)

    def __call__(self, frame: AudioFrame) -> AudioFrame:
        if len(frame.samples) != self.block:
            raise ValueError(
                f"ConverterProcess takes exactly one {self.block}-sample block per call, got {len(frame.samples)}; "
                "run it in the runner's block mode (context_ms, lookahead_ms, crossfade_ms and sola_search_ms 0)"
            )
        x = self._to_conv.process(frame.samples)
        y = self.converter.process(AudioFrame(x, self.converter.sample_rate, frame.timestamp)).samples
        self._fifo = np.concatenate([self._fifo, self._from_conv.process(y)])
        take = self._fifo[: self.block]
        if len(take) < self.block:  # cannot happen once primed; pad rather than shorten the stream
            take = np.concatenate([take, np.zeros(self.block - len(take), np.float32)])
        self._fifo = self._fifo[self.block :]
        return frame.with_samples(take)
