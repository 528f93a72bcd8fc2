"""Chunked HiFi-GAN decoding: latent frames in, audio out as soon as a chunk is ready.

The decoder is ~97% of SoVITS time (gsv_reference/BASELINE.md), so TTS streams by running the prior
(enc_p + flow, cheap) once per sentence and feeding its latent ``z`` (C, T) here in pieces. Every
chunk of ``chunk_frames`` frames is decoded inside a window with ``left_context`` frames before it
and ``overlap_frames + lookahead_frames`` after it (plus the SOLA search), so that the convolutional
decoder sees almost the same neighbourhood as in a one-shot decode. Chunks are joined by SOLA
(:mod:`anchorvoice.streaming.sola`: normalised cross-correlation search over ``sola_search`` samples and an
equal-power crossfade over ``overlap_frames``) against the previous chunk's tail.

Agreement with one-shot decode (measured on the v2 fixture generator in
``tests/gsv/test_sovits_streaming.py``; an impulse in one latent frame moves the output about 11
frames either way): with the defaults (12 frames left, 2 + 8 right) the chunked audio differs from
the one-shot audio by < 2e-6 away from the joins and < 1e-4 at the joins; with only 4 frames of
right context it is ~6e-3 away from and ~3e-2 at the joins. Cost: each chunk re-decodes its context,
so chunks grow from ``chunk_frames`` to ``max_chunk_frames``, and a chunk takes every frame that
already has its right context (the TTS pipeline pushes a token chunk's frames at once: one window
per push, not one per doubling step). Latency: the first chunk needs
``chunk_frames + overlap_frames + lookahead_frames`` latent frames (20 ms each at 50 Hz).

Sans-I/O: :meth:`ChunkedDecoder.push` takes frames and returns the samples that became final.

``gsv-hifigan`` streams with :class:`anchorvoice.plugins.gsv.hifigan_stream.IncrementalDecoder` by default
(same contract, no frame decoded twice, equal to one-shot); this windowed decoder is its
``streaming = "windows"`` and the one that also runs the plain conv1d layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from anchorvoice.frames import FloatArray
from anchorvoice.plugins.gsv.hifigan import Generator
from anchorvoice.streaming.sola import best_offset, equal_power_fades


@dataclass
class ChunkedDecodeConfig:
    """Chunking of the HiFi-GAN decoder (frames are 50 Hz latent frames, 640 samples at 32 kHz)."""

    chunk_frames: int = 10
    """Frames the first chunk needs (10 = 200 ms); each later chunk needs twice the last one's minimum, up
    to the cap. A chunk takes every frame whose right context has arrived (up to the cap), so frames
    pushed in large pieces are decoded in few windows."""
    max_chunk_frames: int = 100
    """Largest chunk: bigger chunks spend less time re-decoding context (2 s here)."""
    left_context: int = 12
    """Already-emitted frames decoded again before each chunk (the decoder reaches ~11 frames back)."""
    overlap_frames: int = 2
    """Frames after a chunk decoded as its tail and crossfaded into the next chunk (2 = 40 ms, RVC's cap)."""
    lookahead_frames: int = 8
    """Extra right context after the tail; overlap + lookahead >= ~10 frames makes joins exact."""
    sola_search: int = 0
    """SOLA search in samples (0: the decoder is deterministic, chunks are already aligned)."""

    def validate(self) -> None:
        """Raise ValueError for a negative or empty setting."""
        if self.chunk_frames < 1 or self.max_chunk_frames < self.chunk_frames:
            raise ValueError(
                f"need 1 <= chunk_frames <= max_chunk_frames, got {self.chunk_frames}, {self.max_chunk_frames}"
            )
        for name in ("left_context", "overlap_frames", "lookahead_frames", "sola_search"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.overlap_frames > self.chunk_frames:
            raise ValueError("overlap_frames must not exceed chunk_frames")


class ChunkedDecoder:
    """Streams ``dec(z, g)`` chunk by chunk for one utterance (``reset`` for the next one)."""

    def __init__(self, dec: Generator, ge: Tensor, config: ChunkedDecodeConfig | None = None) -> None:
        self.cfg = config or ChunkedDecodeConfig()
        self.cfg.validate()
        self.dec = dec
        self.ge = ge  # (1, gin, 1)
        self.hop = dec.cfg.hop_length
        self.reset()

    def reset(self) -> None:
        """Forget the utterance: no frames, no tail."""
        self._z: Tensor | None = None  # (C, N) every frame received (trimmed to what is still needed)
        self._offset = 0  # absolute index of self._z[:, 0]
        self._next = 0  # next frame to emit
        self._tail: FloatArray | None = None  # audio of the frames after the last chunk (crossfade)
        self._chunk = self.cfg.chunk_frames  # least size of the next chunk
        self.offsets: list[int] = []  # SOLA offset chosen at each join (diagnostics)
        self.joins: list[int] = []  # first frame of every chunk after the first (diagnostics)

    @property
    def first_audio_frames(self) -> int:
        """Latent frames needed before the first chunk is emitted."""
        return self._needed(self.cfg.chunk_frames)

    def _needed(self, chunk: int) -> int:
        c = self.cfg
        return chunk + c.overlap_frames + c.lookahead_frames + self._search_frames

    @property
    def _search_frames(self) -> int:
        return -(-self.cfg.sola_search // self.hop)

    def push(self, z: Tensor, final: bool = False) -> FloatArray:
        """Add latent frames ``z`` (C, T) (T may be 0); return the audio that is now final.

        With ``final=True`` everything left is decoded and emitted (the utterance ends).
        """
        if z.dim() != 2:
            raise ValueError(f"latent frames must be (C, T), got shape {tuple(z.shape)}")
        self._z = z if self._z is None else torch.cat([self._z, z], dim=1)
        out: list[FloatArray] = []
        c = self.cfg
        total = self._offset + self._z.shape[1]
        while total - self._next >= self._needed(self._chunk):
            # Every frame whose right context has arrived goes into this chunk (up to the cap): one
            # decode of the context instead of one per doubling step, and fewer joins.
            ready = total - self._next - self._needed(0)
            size = min(c.max_chunk_frames, max(self._chunk, ready))
            out.append(self._emit(self._next, self._next + size, total))
            self._chunk = min(2 * self._chunk, c.max_chunk_frames)
        if final and total > self._next:
            out.append(self._emit(self._next, total, total))
        if final:
            self._tail = None
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def _decode(self, start: int, stop: int) -> FloatArray:
        """Audio of absolute frames [start, stop) (clipped to what was received)."""
        assert self._z is not None
        z = self._z[:, start - self._offset : stop - self._offset]
        with torch.inference_mode():
            audio = self.dec(z.unsqueeze(0), g=self.ge)[0, 0]
        return audio.numpy()

    def _emit(self, begin: int, end: int, total: int) -> FloatArray:
        c, hop = self.cfg, self.hop
        if begin:
            self.joins.append(begin)
        last = end >= total
        w0 = max(0, begin - c.left_context)
        w1 = total if last else min(total, end + c.overlap_frames + c.lookahead_frames + self._search_frames)
        audio = self._decode(w0, w1)
        seg = audio[(begin - w0) * hop :]  # starts at the chunk's first sample
        o = len(self._tail) if self._tail is not None else 0
        d = 0
        if self._tail is not None and o:
            d = best_offset(seg, self._tail, min(c.sola_search, max(0, len(seg) - o)))
            self.offsets.append(d)
        n = (end - begin) * hop
        block = seg[d : d + n].copy()
        if self._tail is not None and o:
            m = min(o, len(block))  # a final chunk may be shorter than the crossfade
            fade_in, fade_out = equal_power_fades(m)
            block[:m] = self._tail[:m] * fade_out + block[:m] * fade_in
        ov = c.overlap_frames * hop
        self._tail = None if last or ov == 0 else seg[d + n : d + n + ov].copy()
        self._next = end
        # Keep only the frames a later window can still reach.
        keep_from = max(0, end - c.left_context)
        if self._z is not None and keep_from > self._offset:
            self._z = self._z[:, keep_from - self._offset :]
            self._offset = keep_from
        return block
