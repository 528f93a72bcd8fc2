"""Pipeline stages around the SoVITS v2 generator: ``gsv-sovits`` (decoder) and ``gsv-hifigan`` (vocoder).

``gsv-sovits`` turns 25 Hz semantic tokens + the sentence's phonemes into the latent ``z`` (192, T)
at 50 Hz, with the bound voice's timbre ``ge`` (the mean over all its reference clips, as the
official multi-reference decode). ``gsv-hifigan`` turns that latent into 32 kHz audio with the same
checkpoint's HiFi-GAN ``dec``; ``stream()`` yields it in chunks (:mod:`anchorvoice.plugins.gsv.streaming_decode`).
The latent frame carries ``ge`` in ``meta["ge"]``, so the vocoder needs no voice analysis of its own.

Without phonemes (the voice-conversion path: HuBERT -> tokens -> SoVITS, no transcript) the prior
gets a single silence phone ``SP`` as its text: the MRTE cross-attention then adds one constant
vector, and the content comes from the tokens alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from anchorvoice.engine.stages import Decoder, Vocoder, VocoderStream
from anchorvoice.engine.state_dicts import build_unset, check_keys, load_assigned
from anchorvoice.engine.store.features import feature_key, file_identity
from anchorvoice.errors import CheckpointError, StageError, TextInputError
from anchorvoice.frames import AudioFrame, FeatureFrame, PhonemeFrame, TokenFrame
from anchorvoice.plugins.cpu_kernels import InferencePrecision, resolve_precision
from anchorvoice.plugins.cpu_threads import AdaptiveThreads
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.hifigan import BlockDFTRule, Generator
from anchorvoice.plugins.gsv.hifigan_stream import IncrementalDecoder
from anchorvoice.plugins.gsv.modules.weight_norm import official_key_shapes
from anchorvoice.plugins.gsv.sovits import N_SYMBOLS, SovitsConfig, SynthesizerTrn
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from anchorvoice.plugins.gsv.streaming_decode import ChunkedDecodeConfig, ChunkedDecoder
from anchorvoice.streaming.thread_governor import GovernedUnit

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

StreamDecoder = IncrementalDecoder | ChunkedDecoder
"""Either streaming decoder: ``push(z, final) -> samples``."""

LATENT_RATE = 50.0  # latent frames per second: 32000 Hz / hop 640


def _sovits_path(configured: str, voice: Voice | None, stage: str) -> Path:
    src = configured or (str(voice.models["sovits"]) if voice is not None and "sovits" in voice.models else "")
    if not src:
        raise CheckpointError(
            f"the {stage} stage needs a SoVITS .pth: set params.sovits_path in the pipeline, "
            "or add the voice with a 'sovits' model path"
        )
    return Path(src).expanduser().resolve()


def timbre_key(sovits: Path, voice: Voice) -> str:
    """The feature-cache key of a voice's ``ge`` under one SoVITS model."""
    return feature_key("gsv-ge", file_identity(sovits), [file_identity(r) for r in voice.references])


@dataclass
class GsvSovitsConfig:
    """Parameters of the ``gsv-sovits`` decoder."""

    sovits_path: str = ""
    """SoVITS ``.pth``; empty: the voice's ``models["sovits"]``."""
    noise_scale: float = 0.5
    """Prior sampling temperature (official default 0.5; 0 = deterministic mean)."""
    speed: float = 1.0
    """Speaking rate: >1 faster (the prior is resampled to int(T / speed) + 1 frames)."""
    seed: int | None = None
    """Seed of the prior noise for reproducible output; None: a fresh draw per utterance."""
    adaptive_threads: bool = True
    """On CPU, run each decode on all of torch's threads or on one, whichever recent decodes measured
    faster per token (:mod:`anchorvoice.streaming.thread_governor`); False: always torch's count."""


class GsvSovitsDecoder(Decoder):
    """Semantic tokens (25 Hz) + phonemes -> latent (192, T) at 50 Hz with ``meta["ge"]``."""

    name = "gsv-sovits"
    # 25 Hz tokens are upsampled x2 to the 50 Hz latent. While tokens stream in, the last frames of
    # the growing sequence still move (attention sees the new tokens): hold back 4 tokens' worth.
    latent_per_token = 2
    holdback_frames = 8
    Config = GsvSovitsConfig

    def __init__(self, config: GsvSovitsConfig | None = None, *, with_hifigan: bool = False) -> None:
        """``with_hifigan``: keep the checkpoint's HiFi-GAN in ``model.dec`` too (a caller that decodes
        with it, as ``gsv-vc``); a TTS pipeline's ``gsv-hifigan`` stage loads its own, so by default the
        prior is loaded alone (half the SoVITS load time and memory)."""
        super().__init__(config)
        self.with_hifigan = with_hifigan
        self.model: SynthesizerTrn | None = None
        self._loaded: Path | None = None
        self._ge: torch.Tensor | None = None
        self._sil_id = 0
        self.threads = AdaptiveThreads()

    def prepare(self, voice: Voice | None) -> None:
        path = _sovits_path(self.config.sovits_path, voice, self.name)
        if path != self._loaded:
            self.model = SynthesizerTrn.from_checkpoint(load_sovits(path), decoder=self.with_hifigan)
            self._loaded = path
            from anchorvoice.plugins.text_common.symbols import load_symbols_v2

            self._sil_id = load_symbols_v2().id("SP")  # v1 shares the first 322 ids, SP included
        if voice is None or not voice.references:
            raise StageError(f"{self.name}: the voice needs at least one reference clip for its timbre")
        key = timbre_key(path, voice)

        def compute() -> dict[str, np.ndarray]:
            refs = [voice.load_reference(self.sample_rate, i) for i in range(len(voice.references))]
            return {"ge": self.timbre(refs).detach().cpu().numpy()}

        # the timbre vector is computed once per voice version and model, then read from the voice's cache
        device = next(self._require_model().parameters()).device
        self._ge = torch.from_numpy(voice.features().get_or_compute(key, compute)["ge"]).to(device)

    @property
    def sample_rate(self) -> int:
        """Rate of the reference audio the model expects (``data.sampling_rate``)."""
        return self.model.cfg.spectrogram.sampling_rate if self.model is not None else 32000

    def timbre(self, references: list[AudioFrame]) -> torch.Tensor:
        """``ge`` (1, gin, 1): mean of the reference encoder over the clips (official multi-ref)."""
        model = self._require_model()
        specs = []
        for ref in references:
            if ref.sample_rate != self.sample_rate:
                raise StageError(f"{self.name}: reference at {ref.sample_rate} Hz, expected {self.sample_rate} Hz")
            specs.append(linear_spectrogram(ref.samples, model.cfg.spectrogram))
        with torch.inference_mode():
            return torch.stack([model.reference_ge(s) for s in specs], 0).mean(0)

    def _require_model(self) -> SynthesizerTrn:
        if self.model is None:
            raise StageError(f"{self.name}: prepare(voice) must load the model first")
        return self.model

    def decode(self, tokens: TokenFrame, phonemes: PhonemeFrame | None = None) -> FeatureFrame:
        model = self._require_model()
        if self._ge is None:
            raise StageError(f"{self.name}: prepare(voice) must compute the voice timbre first")
        codes = np.asarray(tokens.tokens)
        if codes.ndim != 1 or len(codes) == 0:
            raise StageError(f"{self.name}: expected a non-empty (T,) token array, got shape {codes.shape}")
        bins = int(model.quantizer.bins)
        if codes.min() < 0 or codes.max() >= bins:
            raise StageError(f"{self.name}: semantic tokens must lie in [0, {bins}), got {codes.min()}..{codes.max()}")
        n_sym = N_SYMBOLS[model.cfg.version]
        if phonemes is None:
            ids = np.array([self._sil_id], np.int64)
        else:
            ids = np.asarray(phonemes.ids, np.int64)
            if len(ids) == 0 or ids.min() < 0 or ids.max() >= n_sym:
                raise TextInputError(
                    f"{self.name}: phoneme ids must be non-empty and in [0, {n_sym}) for a SoVITS "
                    f"{model.cfg.version} model; use a GPT-SoVITS {model.cfg.version} text frontend"
                )
        gen = torch.Generator().manual_seed(self.config.seed) if self.config.seed is not None else None
        with torch.inference_mode(), self.threads.unit(len(codes), enabled=self.config.adaptive_threads):
            tr = model.infer_latent(
                torch.from_numpy(codes.astype(np.int64))[None, None],
                torch.from_numpy(ids)[None],
                noise_scale=float(self.config.noise_scale),
                speed=float(self.config.speed),
                generator=gen,
                ge=self._ge,
            )
            z = (tr.z * tr.y_mask)[0]
        return FeatureFrame(
            features=z, frame_rate=LATENT_RATE, timestamp=tokens.timestamp, meta={"ge": self._ge, "model": "sovits"}
        )

    def close(self) -> None:
        self.model, self._loaded, self._ge = None, None, None


@dataclass
class GsvHifiganConfig:
    """Parameters of the ``gsv-hifigan`` vocoder."""

    sovits_path: str = ""
    """SoVITS ``.pth`` whose ``dec`` to use; empty: the voice's ``models["sovits"]``."""
    channels_last: bool = True
    """Run the convolutions on the faster channels-last layout (False: plain conv1d)."""
    block_dft: bool = False
    """Run the wide k7/k11 residual blocks as block-DFT convolutions (CPU): ~630 MB more memory for the
    full-size decoder for up to ~13% less vocoder time on 2 threads (bench/sovits_rtf.py)."""
    precision: Literal["float32", "bfloat16", "auto"] = "float32"
    """Convolution precision. ``float32`` is the exact mode (conformance-tested); ``bfloat16`` runs the convs
    2-2.6x faster where the CPU has AVX512-bf16/AMX (agreement with float32 in bench/sovits_rtf.py);
    ``auto`` picks ``bfloat16`` on such a CPU, else ``float32``."""
    adaptive_threads: bool = True
    """On CPU, decode each chunk on all of torch's threads or on one, whichever recent chunks measured
    faster per frame (:mod:`anchorvoice.streaming.thread_governor`); False: always torch's count."""
    streaming: Literal["incremental", "windows"] = "incremental"
    """How ``stream()``/``open_stream()`` decode. ``incremental``: every convolution keeps the inputs its next
    outputs need, so each sample is decoded once and equals a one-shot decode up to rounding
    (:mod:`anchorvoice.plugins.gsv.hifigan_stream`; as fast as ``windows`` within noise on an AVX2 CPU,
    ``bench/vocoder_stream.py``, with a slightly earlier first chunk). ``windows``: each chunk is decoded in a
    window with 22 frames of context (:class:`ChunkedDecoder`; joins within 1e-4); the only choice with
    ``channels_last = false``."""
    chunk_frames: int = 10
    """``stream()``: latent frames in the first chunk (doubling up to ``max_chunk_frames``)."""
    max_chunk_frames: int = 400
    """``stream()``/``open_stream()``: largest chunk in latent frames (400 = 8 s). With ``windows`` every chunk
    re-decodes 22 frames of context, so large late chunks cost less: 16 s streamed as the TTS pipeline feeds it
    took 5.5 s with 100, 4.7 s with 400 (one-shot 3.6 s; full size, 2 threads)."""


class GsvHifiganVocoder(Vocoder):
    """Latent (192, T) at 50 Hz with ``meta["ge"]`` -> audio at the checkpoint's rate (32 kHz)."""

    name = "gsv-hifigan"
    Config = GsvHifiganConfig

    def __init__(self, config: GsvHifiganConfig | None = None) -> None:
        super().__init__(config)
        self.dec: Generator | None = None
        self._loaded: Path | None = None
        self.threads = AdaptiveThreads()

    @property
    def precision(self) -> InferencePrecision:
        """The precision the convolutions run in (``auto`` resolved for this CPU)."""
        try:
            chosen = resolve_precision(self.config.precision)
        except ValueError as exc:
            raise StageError(f"{self.name}: {exc}") from None
        if chosen == "bfloat16" and not self.config.channels_last:
            raise StageError(f"{self.name}: precision 'bfloat16' needs channels_last = true")
        return chosen

    def prepare(self, voice: Voice | None) -> None:
        path = _sovits_path(self.config.sovits_path, voice, self.name)
        if path == self._loaded and self.dec is not None:
            self.dec.use_precision(self.precision)  # a params.set may have changed it
            return
        ckpt = load_sovits(path)
        cfg = SovitsConfig.from_checkpoint_config(ckpt.config, ckpt.version)
        dec = build_unset(lambda: Generator(  # no random init: the weights replace it
            cfg.hifigan,
            channels_last=self.config.channels_last,
            block_dft=BlockDFTRule() if self.config.block_dft else None,
            precision=self.precision,
        ))
        weights = {k[4:]: v for k, v in ckpt.weights.items() if k.startswith("dec.")}
        check_keys(set(official_key_shapes(dec)), set(weights), f"{path} (dec)")
        load_assigned(dec, weights, f"{path} (dec)")
        self.dec = dec.float().eval().requires_grad_(False)
        self.sample_rate = cfg.spectrogram.sampling_rate
        self._loaded = path

    def _inputs(self, latent: FeatureFrame) -> tuple[Generator, torch.Tensor, torch.Tensor]:
        if self.dec is None:
            raise StageError(f"{self.name}: prepare(voice) must load the decoder first")
        ge = latent.meta.get("ge")
        if ge is None:
            raise StageError(f"{self.name}: the latent carries no timbre meta['ge']; put 'gsv-sovits' before it")
        z = torch.as_tensor(latent.features, dtype=torch.float32)
        c = self.dec.cfg.initial_channel
        if z.dim() != 2 or z.shape[0] != c or z.shape[1] == 0:
            raise StageError(f"{self.name}: expected a ({c}, T>0) latent, got {tuple(z.shape)}")
        return self.dec, z, ge

    def synthesize(self, latent: FeatureFrame) -> AudioFrame:
        dec, z, ge = self._inputs(latent)
        with torch.inference_mode(), self.governed(z.shape[1]):
            audio = dec(z[None], g=ge)[0, 0].numpy()
        return AudioFrame(audio, self.sample_rate, timestamp=latent.timestamp)

    def stream(self, latent: FeatureFrame, **overrides: Any) -> Iterator[AudioFrame]:
        """Yield the audio of ``latent`` chunk by chunk (first chunk after ~``chunk_frames`` frames)."""
        dec, z, ge = self._inputs(latent)
        cfg = ChunkedDecodeConfig(
            chunk_frames=self.config.chunk_frames, max_chunk_frames=self.config.max_chunk_frames, **overrides
        )
        cd = self._decoder(dec, ge, cfg)
        t = latent.timestamp
        piece, pos = cfg.chunk_frames, 0
        while pos < z.shape[1]:
            nxt = min(z.shape[1], pos + piece)
            if isinstance(cd, IncrementalDecoder):  # no context to re-decode: pieces may grow
                piece = min(2 * piece, cfg.max_chunk_frames)
            with self.governed(0) as unit:
                block = cd.push(z[:, pos:nxt], final=nxt >= z.shape[1])
                unit.work = len(block)
            pos = nxt
            if len(block):
                yield AudioFrame(block, self.sample_rate, timestamp=t)
                t += len(block) / self.sample_rate

    def open_stream(self, first: FeatureFrame) -> VocoderStream:
        """Chunked decoding for streaming TTS: push new latent frames, get audio once it is final."""
        dec, _, ge = self._inputs(first)
        cfg = ChunkedDecodeConfig(chunk_frames=self.config.chunk_frames, max_chunk_frames=self.config.max_chunk_frames)
        return _ChunkedStream(self, self._decoder(dec, ge, cfg), first)

    def _decoder(self, dec: Generator, ge: torch.Tensor, cfg: ChunkedDecodeConfig) -> StreamDecoder:
        """The streaming decoder ``config.streaming`` names."""
        mode = self.config.streaming
        if mode == "windows":
            return ChunkedDecoder(dec, ge, cfg)
        if mode != "incremental":
            raise StageError(f"{self.name}: streaming must be 'incremental' or 'windows', got {mode!r}")
        if not dec.channels_last:
            raise StageError(f"{self.name}: streaming 'incremental' runs the channels-last convs: set "
                             "channels_last = true, or streaming = 'windows'")
        return IncrementalDecoder(dec, ge)

    def governed(self, work: float) -> AbstractContextManager[GovernedUnit]:
        """The thread count for one piece of decoding (``work``: its size, settable at the end)."""
        return self.threads.unit(work, enabled=self.config.adaptive_threads)

    def close(self) -> None:
        self.dec, self._loaded = None, None


class _ChunkedStream(VocoderStream):
    """``VocoderStream`` over an :class:`IncrementalDecoder` or a :class:`ChunkedDecoder`."""

    def __init__(self, vocoder: GsvHifiganVocoder, decoder: StreamDecoder, first: FeatureFrame) -> None:
        super().__init__(vocoder, first)
        self.decoder = decoder
        self._owner = vocoder

    def push(self, latent: FeatureFrame, final: bool = False) -> AudioFrame:
        z = torch.as_tensor(latent.features, dtype=torch.float32)
        with self._owner.governed(0) as unit:
            samples = self.decoder.push(z, final=final)
            unit.work = len(samples)  # a push that completes no chunk is not counted
        return AudioFrame(samples, self.vocoder.sample_rate, timestamp=latent.timestamp)
