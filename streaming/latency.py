"""Latency account of the live path: what each part adds, in milliseconds, and a one-line story.

The parts, in the order a sample meets them:

* ``device_input`` - the input device/driver buffer (reported by the backend);
* ``block`` - a block must be complete before it is processed;
* ``lookahead`` - future samples the converter sees (the chunker waits for them);
* ``crossfade`` + ``sola_search`` - SOLA emits each block ``overlap + search`` samples behind its
  end (see :class:`anchorvoice.streaming.sola.SolaJoiner`);
* ``jitter_buffer`` - output queued before playback starts so a late worker does not underrun;
* ``device_output`` - the output device/driver buffer.

``algorithmic_ms`` = block + lookahead + crossfade + sola_search (what the block scheme costs by
itself, DESIGN.md: "about 2 x block + crossfade + 10 ms" once the jitter buffer is one block);
``total_ms`` adds the jitter buffer and both device latencies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LatencyAccount:
    """Latency parts in milliseconds."""

    block_ms: float
    """Processing block length."""
    lookahead_ms: float = 0.0
    """Future context the converter waits for."""
    crossfade_ms: float = 0.0
    """SOLA overlap (crossfade) length."""
    sola_search_ms: float = 0.0
    """SOLA search window."""
    jitter_buffer_ms: float = 0.0
    """Output queued before playback starts."""
    device_input_ms: float = 0.0
    """Input device latency reported by the backend."""
    device_output_ms: float = 0.0
    """Output device latency reported by the backend."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"latency part {name} must be >= 0 ms, got {value}")

    @property
    def algorithmic_ms(self) -> float:
        """Delay the block scheme adds by itself."""
        return self.block_ms + self.lookahead_ms + self.crossfade_ms + self.sola_search_ms

    @property
    def buffering_ms(self) -> float:
        """Delay added by queues and devices."""
        return self.jitter_buffer_ms + self.device_input_ms + self.device_output_ms

    @property
    def total_ms(self) -> float:
        """End-to-end delay of an identity converter."""
        return self.algorithmic_ms + self.buffering_ms

    def samples(self, sample_rate: int) -> int:
        """``total_ms`` in samples at ``sample_rate`` (rounded to the nearest sample)."""
        return round(self.total_ms * sample_rate / 1000.0)

    def describe(self) -> str:
        """One line, e.g. ``algorithmic 40.0 ms (block 20.0 + ...) + buffers 20.0 ms = 60.0 ms``."""
        alg = (
            f"block {self.block_ms:.1f} + lookahead {self.lookahead_ms:.1f} + crossfade "
            f"{self.crossfade_ms:.1f} + search {self.sola_search_ms:.1f}"
        )
        buf = (
            f"jitter {self.jitter_buffer_ms:.1f} + device in {self.device_input_ms:.1f} "
            f"+ out {self.device_output_ms:.1f}"
        )
        return (
            f"algorithmic {self.algorithmic_ms:.1f} ms ({alg}) + buffers {self.buffering_ms:.1f} ms "
            f"({buf}) = {self.total_ms:.1f} ms"
        )
