"""A pipeline bound to one voice: builds its stages from a preset and runs offline jobs.

Paths (chosen by the voice, see :mod:`anchorvoice.engine.pipeline_config`):

* TTS, embedded default: ``base_voice -> converter -> effects``
* TTS, neural (a voice with model files): ``frontend -> prosody -> decoder -> vocoder -> effects``, with
  the prompt from the voice's reference (``feature_extractor -> tokenizer``) and reference text, each
  prepared as the prosody model asks (``ProsodyModel.prompt_reference`` / ``prompt_text``)
* VC: ``converter`` (or ``neural_converter`` for a voice with model files) ``-> effects``

Every stage call is timed (``timings``) so the CLI can print a real-time factor per stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorvoice.audio_io import read_audio, resample
from anchorvoice.engine.base_voice_choice import Choice
from anchorvoice.engine.base_voice_picker import BaseVoicePicker
from anchorvoice.engine.pipeline_config import (
    SLOT_KINDS,
    PipelineConfig,
    StageSpec,
    build_stage,
    frontend_class,
    frontend_config,
    frontend_languages,
)
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import (
    BaseVoice,
    Decoder,
    Effect,
    FeatureExtractor,
    ProsodyModel,
    Stage,
    TextFrontend,
    Tokenizer,
    Vocoder,
    VocoderStream,
    VoiceConverter,
)
from anchorvoice.engine.store.features import feature_key, file_identity
from anchorvoice.engine.store.styles import DEFAULT_STYLE, Style
from anchorvoice.engine.voices import Voice
from anchorvoice.errors import ConfigError, StageError, TextInputError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame, FeatureFrame, PhonemeFrame, TextFrame, TokenFrame
from anchorvoice.streaming.resample import StreamResampler

log = logging.getLogger(__name__)


@dataclass
class StageTiming:
    """Wall time spent in one stage and the audio it produced."""

    name: str
    seconds: float = 0.0
    audio_seconds: float = 0.0
    calls: int = 0

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (lower is faster)."""
        return self.seconds / self.audio_seconds if self.audio_seconds > 0 else float("nan")


class Pipeline:
    """Stages of one preset prepared for one voice."""

    def __init__(self, config: PipelineConfig, pm: PluginManager, voice: Voice | None) -> None:
        self.config = config
        self.pm = pm
        self.voice = voice
        self.neural = voice is not None and voice.is_neural
        self.timings: dict[str, StageTiming] = {}
        self._stages: dict[str, Stage] = {}
        self._frontends: dict[str, TextFrontend] = {}
        self._prompts: dict[str, tuple[PhonemeFrame | None, TokenFrame | None]] = {}
        self.style_used = DEFAULT_STYLE
        """The style the last neural ``speak_iter`` was spoken with (``default``: the first reference)."""
        self._speak_t0 = 0.0
        self.first_audio_s: float | None = None
        """Seconds from the start of the last ``speak_iter`` to its first audio (time to first audio)."""
        self.sentences: list[str] = []
        """The sentences ``speak_iter`` is speaking, in order, as the text frontend split them (the
        embedded default voice speaks a text in one piece: one sentence)."""
        self.sentence_index = 0
        """Index in ``sentences`` of the sentence the chunk ``speak_iter`` yielded last belongs to."""
        mode = config.pipeline.mode
        self._unprepared: set[str] = set()
        if mode == "tts":
            needed = ["prosody", "decoder", "vocoder"] if self.neural else ["base_voice", "converter"]
            if not self.neural and config.base_voices and "base_voice" not in config.slots:
                needed.remove("base_voice")  # chosen from [[base_voices]] per language
        else:
            needed = ["neural_converter"] if self.neural else ["converter"]
        optional = ["feature_extractor", "tokenizer"] if self.neural and mode == "tts" else []
        for slot in needed + optional:
            spec = config.slots.get(slot)
            if spec is None:
                if slot in optional:
                    continue
                kind = "neural (model-carrying)" if self.neural else "embedded default"
                raise ConfigError(
                    f"preset has no [slots.{slot}], which a {kind} voice needs for {mode}",
                    source=config.source,
                    key=f"slots.{slot}",
                )
            if slot in optional:
                # only a reference prompt that is not in the voice's feature cache yet runs these: a cold
                # switch to a voice whose prompt is cached does not load them (HuBERT is ~1.5 s of it)
                self._stages[slot] = build_stage(self.pm, SLOT_KINDS[slot], spec, self.config.source, f"slots.{slot}")
                self._unprepared.add(slot)
            else:
                self._stages[slot] = self._build(SLOT_KINDS[slot], spec, f"slots.{slot}")
        self.effects: list[Effect] = [
            self._build("effect", spec, f"effects[{i}]") for i, spec in enumerate(config.effects)
        ]
        fallback = self._stages.get("base_voice")
        self.base_voices = BaseVoicePicker(config, pm, voice, self._build,
                                           fallback if isinstance(fallback, BaseVoice) else None)

    def _build(self, kind: str, spec: StageSpec, key: str) -> Any:
        stage = build_stage(self.pm, kind, spec, self.config.source, key)
        stage.prepare(self.voice)
        return stage

    # -- timing ------------------------------------------------------------------------------
    def _timed(self, label: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
        except (StageError, TextInputError, ConfigError):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("engine."):
                raise
            raise StageError(f"stage {label!r} failed: {type(exc).__name__}: {exc}") from exc
        rec = self.timings.setdefault(label, StageTiming(label))
        rec.seconds += time.perf_counter() - t0
        rec.calls += 1
        if isinstance(out, AudioFrame):
            rec.audio_seconds += out.duration
        return out

    def _stage(self, slot: str) -> Any:
        return self._stages[slot]

    def _prepared(self, slot: str) -> Any:
        """The stage of ``slot``, prepared for the voice now if it was built without (see ``__init__``)."""
        stage = self._stages[slot]
        if slot in self._unprepared:
            stage.prepare(self.voice)
            self._unprepared.discard(slot)
        return stage

    # -- effects -----------------------------------------------------------------------------
    def apply_effects(self, audio: AudioFrame) -> AudioFrame:
        for fx in self.effects:
            audio = self._timed(f"effect:{fx.name}", fx.process, audio)
        return audio

    def _to_output(self, audio: AudioFrame) -> AudioFrame:
        rate = self.config.pipeline.sample_rate
        if audio.sample_rate != rate:
            audio = audio.with_samples(resample(audio.samples, audio.sample_rate, rate), rate)
        return audio

    # -- TTS ---------------------------------------------------------------------------------
    def speak(self, text: str, language: str | None = None, style: str | None = None) -> AudioFrame:
        """Synthesize ``text`` in the bound voice, whole utterance."""
        parts = list(self.speak_iter(text, language, style))
        rate = self.config.pipeline.sample_rate
        return AudioFrame(np.concatenate([p.samples for p in parts]), rate)

    def check_speakable(self, text: str, language: str | None = None) -> None:
        """Raise now what ``speak_iter`` would raise before its first audio (a VC preset, empty text, a
        language the voice cannot speak), so a server can refuse the request instead of failing it later."""
        if self.config.pipeline.mode != "tts":
            raise ConfigError("this preset is a voice-conversion preset; use a tts preset to speak",
                              source=self.config.source, key="pipeline.mode")
        if not text or not text.strip():
            raise TextInputError("nothing to say: the text is empty")
        lang = language or self.config.pipeline.language
        if self.neural:
            self.frontend(lang)
        else:
            self.base_voice_for(lang)[0].check_language(lang)

    def speak_iter(self, text: str, language: str | None = None, style: str | None = None) -> Iterator[AudioFrame]:
        """Synthesize sentence by sentence, on the neural path and on the embedded default alike.

        After each chunk, ``sentences[sentence_index]`` is the sentence it belongs to (live subtitles)."""
        self.check_speakable(text, language)
        lang = language or self.config.pipeline.language
        for fx in self.effects:
            fx.reset()
        self._speak_t0 = time.perf_counter()
        self.first_audio_s = None
        self.sentences, self.sentence_index = [text.strip()], 0
        if self.neural:
            yield from self._speak_neural(text, lang, style)
            return
        base, _ = self.base_voice_for(lang)
        pieces = [p for p in base.split_sentences(text) if p.strip()] or [text.strip()]
        self.sentences = pieces
        for index, piece in enumerate(pieces):
            self.sentence_index = index
            try:
                dry = self._timed(f"base_voice:{base.name}", base.synthesize, TextFrame(piece, lang))
            except TextInputError:
                if len(pieces) > 1:
                    continue  # one sentence of only symbols does not stop the others
                raise
            out = self.apply_effects(self._to_output(self._convert(dry, "converter")))
            if self.first_audio_s is None:
                self.first_audio_s = time.perf_counter() - self._speak_t0
            yield out

    # -- base voice choice (engine.base_voice_picker) -------------------------------------------
    def base_voice_for(self, language: str) -> tuple[BaseVoice, Choice]:
        """The base voice the embedded default speaks ``language`` with, and why it was chosen."""
        return self.base_voices.pick(language)

    def frontend(self, language: str) -> TextFrontend:
        """The text frontend for ``language`` (the first registered one that lists it)."""
        if language not in self._frontends:
            cls = frontend_class(self.pm, language)
            if cls is None:
                raise UnsupportedLanguageError(
                    f"no text frontend for language {language!r}; installed languages: "
                    f"{', '.join(frontend_languages(self.pm)) or 'none'} "
                    "(add a language plugin, see `anchorvoice plugins`)"
                )
            params = self.config.frontends.get(language, {})
            fe = cls(frontend_config(cls, language, params, self.config.source))
            fe.prepare(self.voice)
            self._frontends[language] = fe
        return self._frontends[language]

    def prompt_ready(self, style: str | None = None) -> str:
        """Make the reference prompt of ``style`` ready now (read from the voice's feature cache, or
        computed and kept there): the last step of a switch to a voice, so the first sentence does not
        pay for it. Returns the style it picked (``default``: the first reference)."""
        if self.neural:
            self._reference_prompt(style)
        return self.style_used

    def _reference_prompt(self, style: str | None = None) -> tuple[PhonemeFrame | None, TokenFrame | None]:
        """Reference phonemes and semantic tokens of the default reference or of ``style`` (the voice's
        tagged reference that :meth:`Voice.style` picks; ``style_used`` says which), computed once per
        voice, prepared as the prosody model asks."""
        assert self.voice is not None
        chosen = self.voice.style(style)
        self.style_used = chosen.name if chosen is not None else DEFAULT_STYLE
        if self.style_used not in self._prompts:
            if not (chosen.text if chosen else self.voice.ref_text) or "feature_extractor" not in self._stages:
                self._prompts[self.style_used] = (None, None)  # reference-free
            else:
                self._prompts[self.style_used] = self._cached_prompt(chosen)
        return self._prompts[self.style_used]

    def _cached_prompt(self, style: Style | None) -> tuple[PhonemeFrame, TokenFrame]:
        """The prompt from the voice's feature cache, computed (and kept) on a miss: a cold switch to a
        voice skips the feature extractor and tokenizer on its reference."""
        assert self.voice is not None
        prosody: ProsodyModel = self._stage("prosody")
        fx: FeatureExtractor = self._stage("feature_extractor")
        tok: Tokenizer = self._stage("tokenizer")
        clip = style.reference if style else self.voice.references[0]
        text = style.text if style else self.voice.ref_text
        lang = style.lang if style else self.voice.ref_lang
        fe = self.frontend(lang)
        key = feature_key("prompt", file_identity(clip), text, lang,
                          {k: file_identity(p) for k, p in sorted(self.voice.models.items())},
                          [(st.name, st.cache_key()) for st in (prosody, fx, tok, fe)])

        def compute() -> dict[str, np.ndarray]:
            self._prepared("feature_extractor"), self._prepared("tokenizer")
            ref = prosody.prompt_reference(read_audio(clip, fx.sample_rate))
            feats = self._timed(f"feature_extractor:{fx.name}", fx.extract, ref)
            tokens: TokenFrame = self._timed(f"tokenizer:{tok.name}", tok.encode, feats)
            ref_text = TextFrame(prosody.prompt_text(text, lang), lang)
            ph: PhonemeFrame = self._timed(f"frontend:{fe.name}", fe.phonemize, ref_text)
            out = {"tokens": np.asarray(tokens.tokens), "frame_rate": np.asarray(tokens.frame_rate),
                   "ids": np.asarray(ph.ids), "symbols": np.asarray(ph.symbols, dtype=str),
                   "word2ph": np.asarray(ph.word2ph, dtype=np.int64), "text": np.asarray(ph.text)}
            if ph.bert is not None:
                out["bert"] = np.asarray(ph.bert)
            return out

        a = self.voice.features().get_or_compute(key, compute)
        phones = PhonemeFrame(ids=a["ids"], symbols=[str(x) for x in a["symbols"]],
                              word2ph=[int(x) for x in a["word2ph"]], language=lang, text=str(a["text"]),
                              bert=a.get("bert"))
        return phones, TokenFrame(a["tokens"], float(a["frame_rate"]))

    def _speak_neural(self, text: str, lang: str, style: str | None = None) -> Iterator[AudioFrame]:
        fe = self.frontend(lang)
        prompt_text, prompt_tokens = self._reference_prompt(style)
        sentences = [s for s in fe.split_sentences(text) if s.strip()]
        if not sentences:
            raise TextInputError(f"nothing speakable in {text[:40]!r} (only punctuation or symbols)")
        self.sentences = list(sentences)  # as the user wrote them: what subtitles show
        prosody: ProsodyModel = self._stage("prosody")
        sentences = prosody.plan_sentences(sentences, lang)
        rate = self.config.pipeline.sample_rate
        vocoder: Vocoder = self._stage("vocoder")
        out_rs = StreamResampler(vocoder.sample_rate, rate)
        for index, sentence in enumerate(sentences):
            self.sentence_index = index
            phones = self._timed(f"frontend:{fe.name}", fe.phonemize, TextFrame(sentence, lang))
            if len(phones.ids) == 0:
                continue
            for audio in self._stream_sentence(phones, prompt_text, prompt_tokens):
                block = out_rs.process(audio.samples)
                if len(block):
                    yield self.apply_effects(AudioFrame(block, rate, timestamp=audio.timestamp))
        tail = out_rs.flush()
        if len(tail):
            yield self.apply_effects(AudioFrame(tail, rate))

    def _stream_sentence(
        self, phones: PhonemeFrame, prompt_text: PhonemeFrame | None, prompt_tokens: TokenFrame | None
    ) -> Iterator[AudioFrame]:
        """Tokens chunk by chunk -> latent of the growing sequence -> new frames -> vocoder stream.

        The decoder re-runs on all tokens so far (its prior is cheap next to the vocoder) and only
        frames that will not change any more (all but ``holdback_frames``) go to the vocoder, so audio
        starts after the first token chunk instead of after the whole sentence.
        """
        prosody: ProsodyModel = self._stage("prosody")
        decoder: Decoder = self._stage("decoder")
        vocoder: Vocoder = self._stage("vocoder")
        p_label = f"prosody:{prosody.name}"
        gen = prosody.generate(phones, prompt_text, prompt_tokens)
        tokens: list[np.ndarray] = []
        emitted = 0
        stream: VocoderStream | None = None
        while True:
            chunk = self._timed(p_label, next, gen, None)  # the GPT runs while its generator advances
            if chunk is None:
                break
            tokens.append(np.asarray(chunk.tokens, np.int64))
            final = chunk.final
            all_tokens = np.concatenate(tokens)
            if len(all_tokens) == 0:
                if final:
                    break
                continue
            latent = self._timed(f"decoder:{decoder.name}", decoder.decode, TokenFrame(all_tokens, chunk.frame_rate),
                                 phones)
            total = int(latent.features.shape[-1])
            upto = total if final else max(emitted, total - decoder.holdback_frames)
            if upto == emitted and not final:
                continue
            piece = FeatureFrame(latent.features[:, emitted:upto], latent.frame_rate, meta=latent.meta)
            emitted = upto
            if stream is None:
                stream = vocoder.open_stream(piece)
            audio = self._timed(f"vocoder:{vocoder.name}", stream.push, piece, final)
            self.timings[p_label].audio_seconds += audio.duration
            if len(audio.samples):
                if self.first_audio_s is None:
                    self.first_audio_s = time.perf_counter() - self._speak_t0
                yield audio
            if final:
                break

    # -- VC ----------------------------------------------------------------------------------
    def _convert(self, audio: AudioFrame, slot: str) -> AudioFrame:
        conv: VoiceConverter = self._stage(slot)
        rate = conv.clip_rate(audio.sample_rate)
        if audio.sample_rate != rate:
            audio = audio.with_samples(resample(audio.samples, audio.sample_rate, rate), rate)
        return self._timed(f"{slot}:{conv.name}", conv.convert, audio)

    def convert(self, audio: AudioFrame) -> AudioFrame:
        """Convert a whole clip to the bound voice (offline)."""
        if self.config.pipeline.mode != "vc":
            raise ConfigError("this preset is a tts preset; use a vc preset to convert",
                              source=self.config.source, key="pipeline.mode")
        for fx in self.effects:
            fx.reset()
        slot = "neural_converter" if self.neural else "converter"
        return self.apply_effects(self._to_output(self._convert(audio, slot)))

    def live_effects(self, sample_rate: int) -> tuple[Any, float]:
        """The preset's effect chain for the live path: (frame -> frame, latency in ms at ``sample_rate``).

        Effects keep their state across blocks; their look-ahead (the limiter's) is reported so the
        latency account stays exact."""
        for fx in self.effects:
            fx.reset()
            fx.process(AudioFrame(np.zeros(16, np.float32), sample_rate))  # fixes the rate-dependent delay
        latency_ms = 1000.0 * sum(fx.latency_samples for fx in self.effects) / sample_rate
        for fx in self.effects:
            fx.reset()

        def chain(frame: AudioFrame) -> AudioFrame:
            for fx in self.effects:
                frame = fx.process(frame)
            return frame

        return chain, latency_ms

    def set_effect_params(self, params: dict[str, dict[str, Any]]) -> None:
        """Live effect changes: ``{"limiter": {"ceiling_db": -3}}``; unknown effects are refused by name."""
        by_name = {fx.name: fx for fx in self.effects}
        for name, values in params.items():
            if name not in by_name:
                have = ", ".join(by_name) or "none"
                raise ConfigError(f"no effect {name!r} in this preset (effects: {have})", key=f"effects.{name}")
            for key, value in values.items():
                by_name[name].set_param(key, value)

    def warm_up(self) -> None:
        """Run each voice converter once on a short signal (JIT compilation, first-call allocation),
        then clear the timings, so that reported real-time factors describe steady-state work."""
        from anchorvoice.audio_io import speech_like_signal

        for slot in ("converter", "neural_converter"):
            conv = self._stages.get(slot)
            if isinstance(conv, VoiceConverter):
                conv.convert(speech_like_signal(conv.sample_rate, 0.25))
        self.timings.clear()

    @property
    def converter(self) -> VoiceConverter:
        """The voice converter of a VC pipeline (the live runner drives it block by block)."""
        return self._stage("neural_converter" if self.neural else "converter")  # type: ignore[no-any-return]

    def close(self) -> None:
        for stage in [*self._stages.values(), *self.base_voices.built(), *self.effects, *self._frontends.values()]:
            stage.close()
