"""Stage base classes: one small abstract base per extension point.

A plugin registers stage *classes* (see :mod:`anchorvoice.engine.hookspecs`). Every class has

* ``name``: the registry name used in pipeline TOML files (``plugin = "espeak"``);
* ``Config``: a dataclass of its parameters (one docstring line per field); the pipeline TOML
  ``params`` table is validated into it, unknown keys and wrong types are refused;
* ``__init__(config)``: build without loading any voice;
* ``prepare(voice)``: bind to a voice (load its models or statistics); called again on a voice switch;
* ``reset()``: forget streaming state (new utterance / new stream); ``close()``: free resources.

Audio is mono float32 at the sample rate the frame states. A stage that needs another rate says
so in ``sample_rate``; the pipeline resamples for it. Stages are not thread-safe: one pipeline
uses one instance from one worker thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from anchorvoice.frames import AudioFrame, FeatureFrame, FloatArray, PhonemeFrame, TextFrame, TokenFrame

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice


@dataclass
class NoConfig:
    """A stage without parameters."""


class Stage(ABC):  # noqa: B024 - abstract through its kind bases
    """Common base. Subclasses set ``kind`` (by their base) and ``name`` (by the plugin)."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    def prepare(self, voice: Voice | None) -> None:  # noqa: B027 - optional hook
        """Bind to ``voice`` (None: no voice, e.g. a plain effect chain)."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget streaming state."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (models, processes, devices)."""

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency this stage adds, in samples at its own sample rate."""
        return 0

    def cache_key(self) -> str:
        """What this stage's outputs depend on besides its inputs (cached features are keyed by it): its
        config, and whatever a subclass adds (e.g. which model files it found at prepare)."""
        return repr(self.config)

    def set_param(self, key: str, value: Any) -> None:
        """Change one ``Config`` field live (control API). Raises ``ConfigError`` if unknown."""
        from anchorvoice.engine.config import coerce_field

        setattr(self.config, key, coerce_field(type(self.config), key, value, source=self.name))


class TextFrontend(Stage):
    """Text -> phonemes for the languages in ``languages`` (ISO 639-1 codes).

    ``split_sentences(text)`` returns the sentences in speaking order (punctuation kept);
    ``phonemize(TextFrame)`` returns one ``PhonemeFrame`` whose ``ids`` index ``symbols_table()``.
    """

    kind = "text_frontend"
    languages: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def split_sentences(self, text: str) -> list[str]: ...

    @abstractmethod
    def phonemize(self, text: TextFrame) -> PhonemeFrame: ...


class FeatureExtractor(Stage):
    """Audio at ``sample_rate`` (16 kHz for HuBERT) -> ``FeatureFrame`` (C, T) at ``frame_rate``."""

    kind = "feature_extractor"
    sample_rate: int = 16000

    @abstractmethod
    def extract(self, audio: AudioFrame) -> FeatureFrame: ...


class Tokenizer(Stage):
    """``FeatureFrame`` (C, T) -> ``TokenFrame`` of discrete semantic tokens."""

    kind = "tokenizer"

    @abstractmethod
    def encode(self, features: FeatureFrame) -> TokenFrame: ...


class ProsodyModel(Stage):
    """Phonemes -> semantic tokens, yielded in chunks (``TokenFrame.final`` on the last one).

    ``prompt_text``/``prompt_tokens`` are the reference's phonemes and semantic tokens; both None
    for reference-free generation. The pipeline builds them from the voice's reference clip
    (``prompt_reference`` -> feature extractor -> tokenizer) and transcript (``prompt_text`` ->
    frontend), and asks ``plan_sentences`` which sentences to generate; a model whose training
    expects its inputs prepared in a particular way overrides those three.
    """

    kind = "prosody"

    def prompt_reference(self, reference: AudioFrame) -> AudioFrame:
        """The reference clip (at the feature extractor's rate) as the prompt's features should see it."""
        return reference

    def prompt_text(self, text: str, language: str) -> str:
        """The reference transcript as the frontend should phonemize it for the prompt."""
        return text

    def plan_sentences(self, sentences: list[str], language: str) -> list[str]:
        """The sentences to generate, in order, from the frontend's split (non-empty ones)."""
        return sentences

    @abstractmethod
    def generate(
        self,
        text: PhonemeFrame,
        prompt_text: PhonemeFrame | None = None,
        prompt_tokens: TokenFrame | None = None,
    ) -> Iterator[TokenFrame]: ...


class Decoder(Stage):
    """Semantic tokens (+ phonemes) -> latent ``FeatureFrame`` for a vocoder.

    The timbre comes from the voice bound by ``prepare``. ``phonemes`` may be None on the voice
    conversion path. ``latent_per_token`` latent frames come out per token; streaming TTS calls
    ``decode`` again on the growing token sequence and hands the vocoder only the frames that are
    new, holding back the last ``holdback_frames`` (they still change while tokens arrive) until the
    sentence is final.
    """

    kind = "decoder"
    latent_per_token: int = 1
    holdback_frames: int = 0

    @abstractmethod
    def decode(self, tokens: TokenFrame, phonemes: PhonemeFrame | None = None) -> FeatureFrame: ...


class VocoderStream:
    """Incremental synthesis: ``push(latent, final)`` takes new latent frames (C, t), returns the audio
    that became final. This default buffers and synthesizes once at ``final`` (no streaming); a vocoder
    that can do better overrides ``Vocoder.open_stream``."""

    def __init__(self, vocoder: Vocoder, first: FeatureFrame) -> None:
        self.vocoder = vocoder
        self.meta = first.meta
        self.frame_rate = first.frame_rate
        self.parts: list[Any] = []

    def push(self, latent: FeatureFrame, final: bool = False) -> AudioFrame:
        import numpy as np

        self.parts.append(latent.features)
        if not final:
            return AudioFrame(np.zeros(0, np.float32), self.vocoder.sample_rate)
        feats = self.parts[0] if len(self.parts) == 1 else _concat_time(self.parts)
        self.parts = []
        return self.vocoder.synthesize(FeatureFrame(feats, self.frame_rate, meta=self.meta))


def _concat_time(parts: list[Any]) -> Any:
    """Join (C, t) pieces along time, numpy or torch alike."""
    first = parts[0]
    if hasattr(first, "detach"):
        import torch

        return torch.cat(parts, dim=-1)
    import numpy as np

    return np.concatenate(parts, axis=-1)


class Vocoder(Stage):
    """Latent ``FeatureFrame`` -> audio at ``sample_rate``."""

    kind = "vocoder"
    sample_rate: int = 32000

    @abstractmethod
    def synthesize(self, latent: FeatureFrame) -> AudioFrame: ...

    def open_stream(self, first: FeatureFrame) -> VocoderStream:
        """A :class:`VocoderStream` for one utterance whose first latent piece is ``first``."""
        return VocoderStream(self, first)


class Effect(Stage):
    """Block-wise audio effect: same length and rate out as in; keeps state between blocks."""

    kind = "effect"

    @abstractmethod
    def process(self, audio: AudioFrame) -> AudioFrame: ...


class BaseVoice(Stage):
    """Text -> speech with a built-in voice (no weights): the start of the embedded default TTS."""

    kind = "base_voice"

    @abstractmethod
    def available_languages(self) -> list[str]:
        """Languages this machine can speak right now (depends on installed programs)."""

    def check_language(self, language: str) -> None:
        """Raise UnsupportedLanguageError, listing what it can speak, unless it can speak ``language``.

        A voice that reads several scripts overrides it (e.g. to take ``auto`` or ISO aliases).
        """
        from anchorvoice.errors import UnsupportedLanguageError

        have = self.available_languages()
        if language not in have:
            raise UnsupportedLanguageError(
                f"base voice {self.name!r} cannot speak language {language!r}; it speaks: {', '.join(sorted(have))}"
            )

    def split_sentences(self, text: str) -> list[str]:
        """The pieces ``synthesize`` is called with, in order, so speech streams piece by piece.

        This default speaks the whole text in one piece; a voice that is better sentence by sentence
        (Piper) returns the sentences."""
        return [text.strip()]

    @abstractmethod
    def synthesize(self, text: TextFrame) -> AudioFrame: ...


class VoiceConverter(Stage):
    """Speech -> the bound voice's speech, block by block.

    ``process(block)`` consumes one block at ``sample_rate`` and returns the same number of samples,
    delayed by ``latency_samples``; state carries across calls until ``reset()``. ``convert`` runs
    a whole clip offline and returns it aligned (latency removed, same length), at the rate
    ``clip_rate(rate)`` names for a clip of ``rate`` Hz (``sample_rate`` unless overridden).
    ``analyze_reference(audio)`` computes the statistics the converter needs from a reference clip;
    the voice library stores the result once, under the converter's name.
    """

    kind = "voice_converter"
    sample_rate: int = 16000
    max_reference_s: ClassVar[float | None] = None
    """Longest reference ``analyze_reference`` looks at (None: all of it); the rest is cut, with a warning."""

    @abstractmethod
    def process(self, block: AudioFrame) -> AudioFrame: ...

    def clip_rate(self, rate: int) -> int:
        """The rate ``convert`` takes a whole clip of ``rate`` Hz at (callers resample to it first).
        Default: ``sample_rate``; a converter that can keep a clip's own rate (and bandwidth) says so."""
        return self.sample_rate

    def convert(self, audio: AudioFrame, block_size: int = 4096) -> AudioFrame:
        """Offline conversion of a whole clip through ``process`` (aligned, same length)."""
        import numpy as np

        self.reset()
        lat = self.latency_samples
        padded = np.concatenate([audio.samples, np.zeros(lat + block_size, np.float32)])
        out: list[FloatArray] = []
        for start in range(0, len(audio.samples) + lat, block_size):
            blk = audio.with_samples(padded[start : start + block_size])
            out.append(self.process(blk).samples)
        joined = np.concatenate(out)[lat : lat + len(audio.samples)]
        self.reset()
        return audio.with_samples(joined)

    @classmethod
    def analyze_reference(cls, audio: AudioFrame) -> dict[str, Any]:
        """Statistics of a reference clip (JSON/TOML-serialisable). Default: none needed."""
        return {}

    def input_memory(self) -> Any:
        """What the converter carries from one stream into the next about its input (the dsp converter: the
        speaker's pitch), as JSON-serialisable data; None when it carries nothing (the default)."""
        return None

    def restore_input_memory(self, memory: Any) -> None:
        """Put back what :meth:`input_memory` returned and start a new stream: the engine does this after
        feeding test signals (speed measurement, warm-up) that are not the speaker. Default: ``reset``."""
        self.reset()


class AudioSource(Stage):
    """Yields mono float32 blocks from a device, file or network (opened by ``open``)."""

    kind = "audio_source"

    @abstractmethod
    def open(self, sample_rate: int, block_size: int) -> None: ...

    @abstractmethod
    def read(self) -> FloatArray | None:
        """Next block of ``block_size`` samples; None at the end of a finite source."""


class AudioSink(Stage):
    """Consumes mono float32 blocks (device, file, virtual microphone, null)."""

    kind = "audio_sink"

    @abstractmethod
    def open(self, sample_rate: int, block_size: int) -> None: ...

    @abstractmethod
    def write(self, samples: FloatArray) -> None: ...
