"""``gsv-vc``: neural voice conversion with a GPT-SoVITS v2 voice (``anchorvoice convert --voice alice``).

Chain: speech -> 16 kHz -> HuBERT (``hubert`` stage, 768-d at 50 Hz) -> ``ssl_proj`` + RVQ of the
voice's SoVITS model (``SynthesizerTrn.extract_latent``: 25 Hz semantic tokens, which keep the
content and drop most of the speaker) -> SoVITS prior + flow with the voice's reference timbre
(``gsv-sovits``) -> the same checkpoint's HiFi-GAN -> 32 kHz.

Text: GPT-SoVITS has no transcript-free decode; its prior always cross-attends to phones (MRTE).
Without a transcript this stage passes one silence phone ``SP`` (see :mod:`.stages_sovits`), so the
content comes from the tokens only. This is our choice, not an official mode.

Live use: :meth:`GsvVoiceConverter.process` converts a sliding window (``context_s`` of past input
+ the new block + ``lookahead_s``) and emits the block ``lookahead_s`` late, joined to the previous
block by SOLA (:mod:`anchorvoice.streaming.sola`). HuBERT (its first GroupNorm and its attention see the whole
window), the RVQ and the SoVITS prior run again over the whole window for every block. The HiFi-GAN
decoder does not: it reaches about 11 latent frames either way (:mod:`.streaming_decode`), so only the
emitted span plus ``vocoder_context`` frames before it is decoded, which gives the same samples as
decoding the whole window (tested) in about two thirds of the per-block time (1.4-1.5x faster at
250-500 ms blocks, ``bench/vc_live_rtf.py``). Window starts lie on the absolute 1280-sample grid of the 25 Hz codes, so
every block pairs the same HuBERT frames into codes. On two CPU cores this is still slower than real
time with full-size models; ``anchorvoice live`` measures it and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from anchorvoice.audio_io import resample
from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.errors import AudioInputError
from anchorvoice.frames import AudioFrame, FloatArray, TokenFrame
from anchorvoice.plugins.cpu_kernels import resolve_precision
from anchorvoice.plugins.cpu_threads import AdaptiveThreads
from anchorvoice.plugins.gsv.stages_hubert import HubertExtractor, HubertExtractorConfig
from anchorvoice.plugins.gsv.stages_sovits import GsvSovitsConfig, GsvSovitsDecoder
from anchorvoice.streaming.sola import SolaJoiner

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

HUBERT_RATE = 16000
FRAME_SAMPLES = 640  # one 50 Hz HuBERT / latent frame at 32 kHz
CODE_SAMPLES = 1280  # one 25 Hz semantic code = 2 latent frames x 640 samples at 32 kHz
PAD_SAMPLES = CODE_SAMPLES + 800  # + HuBERT's 400-sample (16 kHz) first-frame window, at 32 kHz


@dataclass
class GsvVcConfig:
    """Parameters of the ``gsv-vc`` voice converter."""

    hubert_dir: str = ""
    """chinese-hubert-base folder; empty: the voice's ``models["hubert"]``."""
    sovits_path: str = ""
    """SoVITS ``.pth``; empty: the voice's ``models["sovits"]``."""
    noise_scale: float = 0.5
    """Prior sampling temperature (official default 0.5)."""
    seed: int | None = 0
    """Noise seed (fixed by default so that converting a clip twice gives the same audio)."""
    context_s: float = 1.0
    """Live: seconds of past input converted again with every block (HuBERT/SoVITS context)."""
    lookahead_s: float = 0.08
    """Live: seconds of input after the emitted block (latency; >= crossfade + search)."""
    crossfade_s: float = 0.04
    """Live: SOLA crossfade between blocks (RVC caps it at 40 ms)."""
    search_s: float = 0.01
    """Live: SOLA search window."""
    precision: Literal["float32", "bfloat16", "auto"] = "float32"
    """HuBERT and HiFi-GAN precision (the ``hubert`` and ``gsv-hifigan`` option of the same name): ``float32``
    exact; ``bfloat16`` ~1.7x (HuBERT) and ~2x (HiFi-GAN) faster on a CPU with AVX512-bf16/AMX; ``auto``
    picks ``bfloat16`` on such a CPU."""
    vocoder_context: int = 12
    """Live: latent frames (20 ms) decoded again before each emitted block; >= 12 matches a whole-window
    decode to ~1e-6 (the decoder's reach is ~11 frames)."""
    adaptive_threads: bool = False
    """On CPU, convert each block on all of torch's threads or on one, whichever recent blocks measured
    faster (:mod:`anchorvoice.streaming.thread_governor`). Off by default: on a quiet 2-core AMD EPYC,
    ``bench/vc_live_rtf.py`` measured 250 ms bf16 blocks at RTF 1.13 governed against 0.80 fixed (each probe
    of one thread costs whole blocks, and a block's cost grows with the window in the first second of a
    stream, which the governor reads as load), so the live path keeps torch's count and its real-time
    priorities."""


class GsvVoiceConverter(VoiceConverter):
    """Speech at 32 kHz -> the bound GPT-SoVITS voice at 32 kHz (same length)."""

    name = "gsv-vc"
    Config = GsvVcConfig
    sample_rate = 32000

    def __init__(self, config: GsvVcConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        self.hubert = HubertExtractor(HubertExtractorConfig(model_dir=c.hubert_dir, precision=c.precision))
        self.sovits = GsvSovitsDecoder(
            GsvSovitsConfig(sovits_path=c.sovits_path, noise_scale=c.noise_scale, seed=c.seed, adaptive_threads=False),
            with_hifigan=True,
        )  # the whole block is governed here, not the prior alone
        self.threads = AdaptiveThreads()
        self._history = np.zeros(0, np.float32)
        self._origin = -1  # stream index of _history[0] (the silence before the stream included); -1: not started
        self._joiner: SolaJoiner | None = None

    def prepare(self, voice: Voice | None) -> None:
        self.hubert.prepare(voice)
        self.sovits.prepare(voice)
        dec = self.sovits.model.dec if self.sovits.model is not None else None
        if dec is not None:  # hubert.prepare has refused an unknown precision already
            dec.use_precision(resolve_precision(self.config.precision))
        self.reset()

    def _samples(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))

    @property
    def latency_samples(self) -> int:
        return self._samples(self.config.lookahead_s)

    def reset(self) -> None:
        self._history = np.zeros(0, np.float32)
        self._origin = -1
        self._joiner = None

    def tokens(self, x: FloatArray) -> np.ndarray:
        """32 kHz samples -> the semantic tokens (T25,) int64 that cover every input sample."""
        model = self.sovits.model
        if model is None:
            raise AudioInputError("gsv-vc: prepare(voice) must load the models first")
        # Pad so that the 25 Hz codes cover every input sample: HuBERT drops a partial last frame (and
        # needs 400 samples for its first), the stride-2 ssl_proj drops an odd last frame.
        padded = np.concatenate([x, np.zeros(PAD_SAMPLES, np.float32)])
        wav16 = resample(padded, self.sample_rate, HUBERT_RATE)
        feats = self.hubert.extract(AudioFrame(wav16, HUBERT_RATE)).features  # (768, T50)
        with torch.inference_mode():
            codes = model.extract_latent(torch.as_tensor(feats)[None])[0, 0].numpy()  # (T25,)
        return codes.astype(np.int64)

    def _latent(self, x: FloatArray) -> tuple[torch.Tensor, torch.Tensor]:
        """32 kHz samples -> the prior's latent (192, F) at 50 Hz, F * 640 >= len(x), and the timbre ``ge``."""
        latent = self.sovits.decode(TokenFrame(self.tokens(x), frame_rate=25.0), None)
        return latent.features, latent.meta["ge"]

    def _vocode(self, z: torch.Tensor, ge: torch.Tensor) -> FloatArray:
        model = self.sovits.model
        assert model is not None  # _latent checked it
        with torch.inference_mode():
            return np.asarray(model.decoder(z[None], g=ge)[0, 0].numpy(), np.float32)

    def _convert_samples(self, x: FloatArray) -> FloatArray:
        """Convert 32 kHz samples; the result has the same length (zero-padded at the end)."""
        y = self._vocode(*self._latent(x))
        out = np.zeros(len(x), np.float32)
        n = min(len(x), len(y))
        out[:n] = y[:n]
        return out

    def convert(self, audio: AudioFrame, block_size: int = 4096) -> AudioFrame:
        """Offline: the whole clip in one window (better than block processing, same length)."""
        if audio.sample_rate != self.sample_rate:
            raise AudioInputError(f"gsv-vc needs {self.sample_rate} Hz audio, got {audio.sample_rate} Hz; resample")
        return audio.with_samples(self._convert_samples(audio.samples))

    def process(self, block: AudioFrame) -> AudioFrame:
        if block.sample_rate != self.sample_rate:
            raise AudioInputError(f"gsv-vc needs {self.sample_rate} Hz audio, got {block.sample_rate} Hz; resample")
        b = len(block.samples)
        if b == 0:
            return block.with_samples(np.zeros(0, np.float32))
        overlap = min(self._samples(self.config.crossfade_s), b)
        search = self._samples(self.config.search_s)
        lookahead = self.latency_samples
        if overlap + search > lookahead:
            raise AudioInputError("gsv-vc: lookahead_s must be at least crossfade_s + search_s")
        if self.config.vocoder_context < 0:
            raise AudioInputError("gsv-vc: vocoder_context must be >= 0 latent frames")
        if self._joiner is None or self._joiner.block != b:
            self._joiner = SolaJoiner(b, overlap, search)
        if self._origin < 0:  # start of the stream: the window's past is silence
            self._history, self._origin = np.zeros(b + lookahead, np.float32), 0
        self._history = np.concatenate([self._history, block.samples])
        # The window starts `context_s` before the emitted block, rounded down to the absolute code grid.
        first = self._origin + len(self._history) - lookahead - b  # stream index of the block's first output
        window_start = max(0, first - self._samples(self.config.context_s)) // CODE_SAMPLES * CODE_SAMPLES
        drop = max(0, window_start - self._origin)
        self._history, self._origin = self._history[drop:], self._origin + drop
        start = first - self._origin  # the block's first output sample in the window
        with self.threads.unit(b, enabled=self.config.adaptive_threads):
            z, ge = self._latent(self._history)
            f0 = max(0, start // FRAME_SAMPLES - self.config.vocoder_context)
            y = self._vocode(z[:, f0:], ge)
        at = start - f0 * FRAME_SAMPLES
        segment = y[at : at + b + overlap + search]
        return block.with_samples(self._joiner.join(segment).copy())
