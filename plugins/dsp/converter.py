"""The embedded default voice converter: pitch shift + formant shift toward a reference voice.

No weights: the voice is described by statistics of its reference clip (``analyze_reference``,
stored once in the voice library under ``analysis["dsp"]``). While streaming, the converter
tracks the input's running median f0 and mean envelope (:mod:`anchorvoice.plugins.dsp.tracker`) and sets

* pitch ratio = reference median f0 / input median f0 (so the output's median lands on the
  reference's), and
* formant ratio = the warp bringing the input's mean envelope closest to the reference's, plus
  a bounded long-term equaliser for what a warp cannot reach (timbre / spectral tilt),
* per frame, the warped envelope moved toward the mean of its nearest envelopes among the
  reference's own frames (:mod:`anchorvoice.plugins.dsp.timbre`), so each sound takes the target's
  resonances, not only the average,

then runs the STFT shifter (:mod:`anchorvoice.plugins.dsp.shifter`). Latency 512 samples = 32 ms at 16 kHz.
With ``live = "psola"`` the shifter only analyses (its frames feed the same statistics) and a causal
TD-PSOLA (:mod:`anchorvoice.plugins.dsp.psola_stream`, 40 ms) shifts with the ratios they give.

Whole clips (``convert``: a file, or each sentence the embedded TTS speaks) go through TD-PSOLA
instead (:mod:`anchorvoice.plugins.dsp.offline`), at the clip's own rate, unless ``offline = "stream"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from anchorvoice.audio_io import clean_samples, resample
from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.errors import ReferenceAudioError, StageError, VoiceError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp import offline, psola_stream
from anchorvoice.plugins.dsp.shifter import LATENCY, Shifter
from anchorvoice.plugins.dsp.timbre import FrameMatcher, build_codebook
from anchorvoice.plugins.dsp.tracker import InputTracker

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

STATS_VERSION = 2
"""Layout version of the ``analysis["dsp"]`` table; older voices are re-analysed on prepare.
2: pitch from pYIN + continuity path, ``envelope_codebook`` for frame-wise timbre matching."""
OFFLINE_METHODS = ("psola", "stream")
"""Values of ``DspConfig.offline``."""
LIVE_METHODS = ("stft", "psola")
"""Values of ``DspConfig.live``."""
MAX_CLIP_RATE = 48000
"""Highest rate a whole clip is converted at (a 96 kHz file is taken down to 48 kHz)."""
MIN_VOICED_FRAMES = 63
"""0.5 s of voiced frames (8 ms each): fewer give a median f0 that one word can swing."""
_SMOOTH = 0.15
"""Per-frame step of the pitch ratio toward its target in the log domain (time constant ~50 ms at
8 ms frames): fast enough to lock on in the first syllable, slow enough not to warble."""


@dataclass
class DspConfig:
    """Parameters of the DSP voice converter (all live-changeable with ``set_param``)."""

    pitch_semitones: float | None = None
    """Fixed pitch shift in semitones; None: automatic (input median f0 -> the voice's)."""
    formant_ratio: float | None = None
    """Fixed formant (envelope) ratio, >1 brighter/smaller, <1 darker/larger; None: automatic."""
    strength: float = 1.0
    """Fraction (0-1) of the automatic pitch and formant moves to apply (log domain)."""
    timbre_match: float = 0.5
    """Fraction (0-1) of the remaining long-term envelope difference to equalise (max 12 dB)."""
    timbre_frames: float = 0.0
    """Fraction (0-1) of each frame's envelope above ~1.5 kHz taken from its nearest reference
    frames (frame-wise timbre transfer, experimental: see plugins/dsp/timbre.py); 0 = only the
    global formant warp and equaliser. It is part of the STFT shifter, so above 0 whole clips are
    converted as ``offline = "stream"`` does."""
    mix: float = 1.0
    """Wet/dry mix: 1 = converted only, 0 = input only (delayed to stay aligned)."""
    max_pitch_ratio: float = 4.0
    """Limit of the automatic pitch ratio (and its inverse): 4 = two octaves, enough to take an
    80 Hz voice to 300 Hz and back."""
    max_formant_ratio: float = 1.3
    """Limit of the automatic formant ratio (and its inverse); adult voices differ by < 25 %."""
    keep_loudness: bool = True
    """Keep the output's running loudness equal to the input's (within +-6 dB)."""
    silence_db: float = -50.0
    """Input frames quieter than this (dBFS) never update the input statistics."""
    offline: str = "psola"
    """How whole clips (``convert`` on a file, each sentence the embedded TTS speaks) are converted:
    ``psola`` (pitch-synchronous overlap-add over the whole clip, :mod:`anchorvoice.plugins.dsp.offline`:
    no phase-vocoder artifacts: DNSMOS median +0.25 over 30 voice pairs, up to +1 on large shifts) or
    ``stream`` (the live STFT shifter, block by block)."""
    carry_input: bool = True
    """A new stream, and a switch of voice, start from 64 quantiles of the input's pitch heard before (the
    same microphone, usually the same speaker: :meth:`InputTracker.carry_from`), so the first words get the
    speaker's long-run pitch ratio instead of the first phrase's; a voice 1.45x away after 1 s of speech
    drops them. False: every stream starts from nothing (``forget_input`` does it once)."""
    live: str = "stft"
    """How live audio is shifted: ``stft`` (the STFT shifter, 32 ms) or ``psola`` (causal TD-PSOLA,
    :mod:`anchorvoice.plugins.dsp.psola_stream`, 40 ms; no frame-wise timbre matching or equaliser).
    Takes effect at the next stream (``reset``)."""


def _clip_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0 of the voiced frames, mean mean-removed envelope in dB over them, their natural-log
    envelopes) of a 16 kHz clip."""
    f0, voiced = an.voiced_frames(x)
    if not voiced.any():
        return np.zeros(0), np.zeros(an.N_FFT // 2 + 1), np.zeros((0, an.N_FFT // 2 + 1))
    log_env = an.voiced_log_envelopes(x, voiced)
    env_db = an.normalise(log_env * an.TO_DB)
    return f0[voiced], env_db.mean(axis=0), log_env


class DspVoiceConverter(VoiceConverter):
    """Pitch + formant shifting DSP converter (16 kHz, 32 ms latency, no model weights)."""

    name = "dsp"
    Config = DspConfig
    sample_rate = an.SAMPLE_RATE
    max_reference_s = 60.0  # a minute of speech settles the pitch and envelope statistics

    def __init__(self, config: DspConfig | None = None) -> None:
        super().__init__(config)
        self.config: DspConfig
        self._shifter = Shifter()
        self._tracker = InputTracker(self.config.silence_db)
        self._target_f0: float | None = None
        self._target_env: np.ndarray | None = None
        self._target_spread: float | None = None
        """Log interquartile ratio of the voice's pitch (its range), from its statistics."""
        self._matcher: FrameMatcher | None = None
        self._live = self.config.live
        self._psola = psola_stream.StreamPsola()
        self._shifter.analyse_only = self._live == "psola"
        self._dry = np.zeros(LATENCY, np.float32)
        self._seed: tuple[np.ndarray, np.ndarray] | None = None
        self._locked = False
        self.last_clip: offline.ClipShift | None = None
        """Ratios the last offline ``convert`` used (None before one)."""

    @property
    def target_f0_hz(self) -> float | None:
        """Median f0 of the bound voice's reference (None without a voice)."""
        return self._target_f0

    @property
    def current(self) -> dict[str, float | None]:
        """What the converter is doing now (for status displays): pitch and formant ratio in use,
        the input's running median f0 and the target's."""
        return {
            "pitch_ratio": self._shifter.ratio,
            "formant_ratio": self._shifter.formant_ratio,
            "input_median_f0_hz": self._tracker.median_f0,
            "target_median_f0_hz": self._target_f0,
            "carried_pitch_estimates": self._tracker.carried_estimates,
        }

    @property
    def latency_samples(self) -> int:
        """512 samples (32 ms at 16 kHz, one STFT frame); 640 (40 ms) with ``live = "psola"``."""
        return psola_stream.LATENCY if self._live == "psola" else LATENCY

    @classmethod
    def analyze_reference(cls, audio: AudioFrame) -> dict[str, Any]:
        """Pitch and envelope statistics of a reference clip (any rate; analysed at 16 kHz)."""
        x = resample(audio.samples, audio.sample_rate, an.SAMPLE_RATE)
        fv, mean_env, log_envs = _clip_statistics(x)
        if len(fv) < MIN_VOICED_FRAMES:
            voiced_ms = len(fv) * an.HOP * 1000 / an.SAMPLE_RATE
            raise ReferenceAudioError(
                f"the reference has {voiced_ms:.0f} ms of voiced speech; the DSP converter needs a clip "
                "of someone speaking (at least 0.5 s voiced, 3-10 s is best)"
            )
        freqs = np.fft.rfftfreq(an.N_FFT, 1.0 / an.SAMPLE_RATE)
        power = 10.0 ** (mean_env / 10.0)
        band = an.band_mask()
        centroid = float(np.sum(freqs[band] * power[band]) / np.sum(power[band]))
        # Local maxima of the long-term envelope under 5 kHz: formant-region estimates.
        k = np.arange(1, len(mean_env) - 1)
        peaks = k[(mean_env[k] > mean_env[k - 1]) & (mean_env[k] >= mean_env[k + 1])]
        peaks = peaks[(freqs[peaks] >= 200.0) & (freqs[peaks] <= 5000.0)][:4]
        return {
            "version": STATS_VERSION,
            "sample_rate": an.SAMPLE_RATE,
            "n_fft": an.N_FFT,
            "median_f0_hz": float(np.median(fv)),
            "f0_percentiles_hz": [float(v) for v in np.percentile(fv, [5, 25, 50, 75, 95])],
            "voiced_ratio": float(len(fv) / max(1, (len(x) - an.N_FFT) // an.HOP + 1)),
            "mean_envelope_db": [round(float(v), 3) for v in mean_env],
            "spectral_centroid_hz": centroid,
            "envelope_peaks_hz": [float(freqs[p]) for p in peaks],
            "envelope_codebook": [[round(float(v), 4) for v in row] for row in build_codebook(log_envs)],
        }

    def prepare(self, voice: Voice | None) -> None:
        """Read the voice's reference statistics (analysing its reference if they are missing)."""
        self._target_f0 = None
        self._target_env = None
        self._target_spread = None
        self._matcher = None
        if voice is not None:
            stats = dict(voice.analysis.get(self.name, {}))
            if stats.get("version") != STATS_VERSION or stats.get("n_fft") != an.N_FFT:
                # Voice added before this converter (or an older version) was installed.
                if not voice.references:
                    raise VoiceError(
                        f"voice {voice.name!r} has no DSP statistics and no reference clip; add it again "
                        f"with `anchorvoice voices add {voice.name} --ref clip.wav`"
                    )
                stats = self.analyze_reference(voice.load_reference(self.sample_rate))
            f0 = float(stats["median_f0_hz"])
            env = np.asarray(stats["mean_envelope_db"], dtype=np.float64)
            if not an.F0_MIN <= f0 <= an.F0_MAX or env.shape != (an.N_FFT // 2 + 1,):
                raise StageError(
                    f"voice {voice.name!r} has unusable DSP statistics (median f0 {f0:.1f} Hz); "
                    f"remove and re-add it with `anchorvoice voices add`"
                )
            self._target_f0, self._target_env = f0, env
            pct = stats.get("f0_percentiles_hz") or []
            self._target_spread = float(np.log(pct[3] / pct[1])) if len(pct) == 5 and pct[1] > 0 else None
            codebook = np.asarray(stats.get("envelope_codebook", []), dtype=np.float64)
            if codebook.ndim == 2 and codebook.shape[1] == an.LIFTER + 1:
                self._matcher = FrameMatcher(codebook, self.config.timbre_frames)
        self.reset()

    def reset(self) -> None:
        """New stream: forget signal state and the input statistics (but for the pitch estimates that
        ``carry_input`` carries)."""
        self._shifter.reset()
        self._shifter.ratio = 1.0
        self._shifter.formant_ratio = 1.0
        self._shifter.eq = np.zeros(an.N_FFT // 2 + 1)
        previous, self._tracker = self._tracker, InputTracker(self.config.silence_db)
        if self.config.carry_input:
            self._tracker.carry_from(previous)
        self._locked = False
        if self._matcher is not None:
            self._matcher.reset()
        if self._seed is not None:
            self._tracker.seed(*self._seed)
        if self.config.live not in LIVE_METHODS:
            raise StageError(f"dsp live = {self.config.live!r}; use one of {', '.join(LIVE_METHODS)}")
        self._live = self.config.live
        self._shifter.analyse_only = self._live == "psola"
        self._psola.reset()
        self._dry = np.zeros(self.latency_samples, np.float32)

    def input_memory(self) -> list[float]:
        """The pitch estimates (Hz) a new stream would start from (see ``carry_input``)."""
        return [float(v) for v in self._tracker.next_prior()]

    def restore_input_memory(self, memory: Any) -> None:
        """Start the next stream from ``memory`` (:meth:`input_memory`'s list of Hz); None or [] from nothing."""
        values = np.asarray(memory if memory is not None else [], dtype=np.float64).ravel()
        if values.size and not np.all((values >= an.F0_MIN) & (values <= an.F0_MAX)):
            raise StageError(f"dsp input memory holds pitches outside {an.F0_MIN:.0f}-{an.F0_MAX:.0f} Hz")
        self.reset()
        self._tracker.carry_prior(values)

    def forget_input(self) -> None:
        """Start the next stream from nothing, as for a new speaker (``carry_input`` carries nothing once)."""
        self.restore_input_memory(None)

    def convert(self, audio: AudioFrame, block_size: int = 4096) -> AudioFrame:
        """Offline conversion of a whole clip (aligned, same length).

        ``offline = "psola"``: TD-PSOLA with ratios from the whole clip's statistics; ``"stream"``:
        the live shifter with the input statistics seeded from the whole clip's."""
        cfg = self.config
        if cfg.offline not in OFFLINE_METHODS:
            raise StageError(f"dsp offline = {cfg.offline!r}; use one of {', '.join(OFFLINE_METHODS)}")
        self._check_ready(audio, self.clip_rate(audio.sample_rate))
        if cfg.offline == "psola" and cfg.timbre_frames <= 0.0:
            return self._convert_psola(audio)
        f0, env, _ = _clip_statistics(audio.samples)
        self._seed = (f0, env) if len(f0) else None
        try:
            return super().convert(audio, block_size)
        finally:
            self._seed = None
            self.reset()

    def _convert_psola(self, audio: AudioFrame) -> AudioFrame:
        cfg = self.config
        x = clean_samples(audio.samples, "dsp converter input")
        y, shift = offline.convert_clip(
            x,
            self._target_f0,
            self._target_env,
            target_f0_spread=self._target_spread,
            pitch_ratio=None if cfg.pitch_semitones is None else 2.0 ** (cfg.pitch_semitones / 12.0),
            formant_ratio=cfg.formant_ratio,
            strength=float(np.clip(cfg.strength, 0.0, 1.0)),
            timbre_match=float(np.clip(cfg.timbre_match, 0.0, 1.0)),
            max_pitch_ratio=cfg.max_pitch_ratio,
            max_formant_ratio=cfg.max_formant_ratio,
            rate=audio.sample_rate,
        )
        self.last_clip = shift
        mix = float(np.clip(cfg.mix, 0.0, 1.0))
        if mix < 1.0:
            y = (mix * y + (1.0 - mix) * x).astype(np.float32)
        return audio.with_samples(y)

    def clip_rate(self, rate: int) -> int:
        """Whole clips converted by PSOLA keep their own rate (16-48 kHz) and so their bandwidth;
        the STFT shifter works at 16 kHz."""
        if self.config.offline == "psola" and self.config.timbre_frames <= 0.0:
            return min(max(rate, self.sample_rate), MAX_CLIP_RATE)
        return self.sample_rate

    def _check_ready(self, block: AudioFrame, rate: int | None = None) -> None:
        rate = self.sample_rate if rate is None else rate
        if block.sample_rate != rate:
            raise StageError(
                f"the dsp converter works at {rate} Hz here but got {block.sample_rate} Hz audio "
                "(resample it first, e.g. anchorvoice.audio_io.resample)"
            )
        cfg = self.config
        if self._target_f0 is None and (cfg.pitch_semitones is None or cfg.formant_ratio is None):
            raise StageError(
                "the dsp converter has no voice to convert toward: give a voice (--voice NAME), "
                "or set both pitch_semitones and formant_ratio"
            )
        if cfg.formant_ratio is not None and not 0.5 <= cfg.formant_ratio <= 2.0:
            raise StageError(f"formant_ratio {cfg.formant_ratio} is outside 0.5-2.0")

    def _on_frame(self, frame: np.ndarray, log_env: np.ndarray) -> None:
        """Per STFT frame: update input statistics and steer the shifter."""
        cfg = self.config
        tr, sh = self._tracker, self._shifter
        tr.silence_db = cfg.silence_db
        sh.keep_loudness = cfg.keep_loudness
        tr.observe(frame, log_env)
        if cfg.pitch_semitones is not None:
            sh.ratio = 2.0 ** (cfg.pitch_semitones / 12.0)
            self._locked = True  # back to automatic later: glide from here, do not jump
        elif self._target_f0 is not None:
            target = tr.pitch_ratio(self._target_f0, cfg.strength, cfg.max_pitch_ratio)
            if target is not None and not self._locked:
                # First estimate of the stream: jump, so the first word is not a glide up to pitch.
                sh.ratio, self._locked = target, True
            elif target is not None:
                sh.ratio = math.exp((1 - _SMOOTH) * math.log(sh.ratio) + _SMOOTH * math.log(target))
        if cfg.formant_ratio is not None:
            sh.formant_ratio = cfg.formant_ratio
            sh.eq = np.zeros(an.N_FFT // 2 + 1)
            sh.envelope_fn = None
            return
        frames = float(np.clip(cfg.timbre_frames, 0.0, 1.0)) if self._matcher is not None else 0.0
        if self._matcher is not None:
            self._matcher.amount = frames * cfg.strength
        sh.envelope_fn = self._matcher if frames > 0.0 else None
        if self._target_env is not None and tr.refit_due():
            # The matched frames already carry the target's long-term shape: equalise the rest only.
            sh.formant_ratio, sh.eq = tr.fit_envelope(
                self._target_env, cfg.strength, cfg.timbre_match * (1.0 - frames), cfg.max_formant_ratio
            )

    def process(self, block: AudioFrame) -> AudioFrame:
        """Convert one block; returns as many samples, delayed by ``latency_samples``."""
        self._check_ready(block)
        # A NaN would stay in the overlap-add and phase state; clean (and log) it at the door.
        x = clean_samples(block.samples, "dsp converter input")
        wet = self._shifter.process(x, self._on_frame)
        if self._live == "psola":  # the shifter only analysed: its tracker set the pitch ratio
            sh, cfg = self._shifter, self.config
            formant = cfg.formant_ratio  # else as for whole clips: a quarter of the pitch move
            if formant is None:
                formant = offline.formant_for_pitch(sh.ratio, cfg.max_formant_ratio)
            wet = self._psola.process(x, sh.ratio, formant)
        mix = float(np.clip(self.config.mix, 0.0, 1.0))
        if mix < 1.0:
            self._dry = np.concatenate([self._dry, x])
            dry, self._dry = self._dry[: len(wet)], self._dry[len(wet) :]
            wet = (mix * wet + (1.0 - mix) * dry).astype(np.float32)
        else:
            self._dry = np.concatenate([self._dry, x])[-self.latency_samples:]
        return block.with_samples(wet)
