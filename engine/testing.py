"""Test helpers for plugin authors: check a stage class against its contract in a few lines.

    from anchorvoice.engine.testing import check_stage

    def test_my_effect():
        check_stage(MyEffect)                       # builds it, feeds audio, checks the output

Each check raises ``AssertionError`` with a message naming the stage and the broken rule, so it
reads well in pytest output. Stages that need inputs only a model can give (decoders, vocoders,
tokenizers, prosody) take them through ``inputs=``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.stage_kinds import STAGE_KINDS
from anchorvoice.engine.stages import (
    AudioSink,
    AudioSource,
    BaseVoice,
    Decoder,
    Effect,
    FeatureExtractor,
    ProsodyModel,
    Stage,
    TextFrontend,
    Tokenizer,
    Vocoder,
    VoiceConverter,
)
from anchorvoice.engine.voices import Voice
from anchorvoice.frames import AudioFrame, FeatureFrame, PhonemeFrame, TextFrame, TokenFrame


def _fail(stage: type[Stage] | Stage, rule: str) -> None:
    name = getattr(stage, "name", "?") or type(stage).__name__
    raise AssertionError(f"stage {name!r} ({getattr(stage, 'kind', '?')}): {rule}")


def _check_audio(stage: Stage, out: Any, length: int | None, rate: int | None, what: str) -> AudioFrame:
    if not isinstance(out, AudioFrame):
        _fail(stage, f"{what} must return an AudioFrame, got {type(out).__name__}")
    assert isinstance(out, AudioFrame)
    if out.samples.dtype != np.float32 or out.samples.ndim != 1:
        _fail(stage, f"{what} must return mono float32 samples")
    if not np.all(np.isfinite(out.samples)):
        _fail(stage, f"{what} returned NaN or inf samples")
    if length is not None and len(out.samples) != length:
        _fail(stage, f"{what} must return {length} samples (same as in), got {len(out.samples)}")
    if rate is not None and out.sample_rate != rate:
        _fail(stage, f"{what} must keep the sample rate {rate}, got {out.sample_rate}")
    return out


def check_class(cls: type[Stage]) -> None:
    """Static rules: a known kind, a name, a dataclass Config buildable from defaults."""
    if cls.kind not in STAGE_KINDS or not issubclass(cls, STAGE_KINDS[cls.kind]):
        _fail(cls, f"must subclass one of engine.stages bases ({', '.join(STAGE_KINDS)})")
    if not cls.name:
        _fail(cls, "needs a non-empty `name` class attribute (used in pipeline presets)")
    if not dataclasses.is_dataclass(cls.Config):
        _fail(cls, "`Config` must be a dataclass")
    try:
        cls.Config()
    except TypeError as exc:
        _fail(cls, f"`Config()` must work with defaults only ({exc})")


def check_stage(
    cls: type[Stage],
    *,
    config: Any = None,
    voice: Voice | None = None,
    inputs: dict[str, Any] | None = None,
    sample_rate: int = 16000,
    block_size: int = 512,
    block_invariant: bool = True,
    language: str | None = None,
) -> Stage:
    """Build ``cls``, bind ``voice``, run it on test input and check the output contract.

    ``inputs`` supplies what a model-backed stage consumes: ``tokens`` (TokenFrame),
    ``phonemes`` (PhonemeFrame), ``latent`` / ``features`` (FeatureFrame), ``text`` (str).
    Returns the prepared stage for further assertions.
    """
    check_class(cls)
    inputs = inputs or {}
    stage = cls(config)
    stage.prepare(voice)
    if stage.latency_samples < 0:
        _fail(stage, "latency_samples must be >= 0")

    if isinstance(stage, Effect):
        sig = speech_like_signal(sample_rate, 0.5)
        whole = _check_audio(stage, stage.process(sig), len(sig.samples), sample_rate, "process()")
        if block_invariant:
            stage.reset()
            parts = [
                stage.process(sig.with_samples(sig.samples[i : i + block_size])).samples
                for i in range(0, len(sig.samples), block_size)
            ]
            if not np.allclose(np.concatenate(parts), whole.samples, atol=1e-4):
                _fail(stage, "block-wise output differs from one-block output (state not carried?)")
    elif isinstance(stage, VoiceConverter):
        sig = speech_like_signal(stage.sample_rate, 1.0)
        blk = sig.with_samples(sig.samples[:block_size])
        _check_audio(stage, stage.process(blk), block_size, stage.sample_rate, "process()")
        _check_audio(stage, stage.convert(sig), len(sig.samples), stage.sample_rate, "convert()")
    elif isinstance(stage, BaseVoice):
        langs = stage.available_languages()
        if not langs or not all(isinstance(x, str) for x in langs):
            _fail(stage, "available_languages() must list at least one language code")
        lang = language or ("en" if "en" in langs else langs[0])
        out = _check_audio(stage, stage.synthesize(TextFrame(inputs.get("text", "hello world"), lang)),
                           None, None, "synthesize()")
        if len(out.samples) == 0:
            _fail(stage, "synthesize() returned no audio")
    elif isinstance(stage, TextFrontend):
        if not stage.languages:
            _fail(stage, "`languages` must list the languages it covers")
        text = inputs.get("text", "hello")
        sentences = stage.split_sentences(text)
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            _fail(stage, "split_sentences() must return a list of str")
        ph = stage.phonemize(TextFrame(text, language or stage.languages[0]))
        if not isinstance(ph, PhonemeFrame) or ph.ids.dtype != np.int64:
            _fail(stage, "phonemize() must return a PhonemeFrame with int64 ids")
        if sum(ph.word2ph) != len(ph.ids):
            _fail(stage, f"word2ph sums to {sum(ph.word2ph)} but there are {len(ph.ids)} phones")
    elif isinstance(stage, FeatureExtractor):
        feats = stage.extract(inputs.get("audio", speech_like_signal(stage.sample_rate, 1.0)))
        if not isinstance(feats, FeatureFrame) or len(getattr(feats.features, "shape", ())) != 2:
            _fail(stage, "extract() must return a FeatureFrame with (C, T) features")
    elif isinstance(stage, Tokenizer):
        toks = stage.encode(inputs["features"])
        if not isinstance(toks, TokenFrame) or toks.tokens.ndim != 1:
            _fail(stage, "encode() must return a TokenFrame with 1-D tokens")
    elif isinstance(stage, ProsodyModel):
        chunks = list(stage.generate(inputs["phonemes"], inputs.get("prompt_text"), inputs.get("prompt_tokens")))
        if not chunks or not all(isinstance(c, TokenFrame) for c in chunks):
            _fail(stage, "generate() must yield TokenFrames")
        if not chunks[-1].final or any(c.final for c in chunks[:-1]):
            _fail(stage, "only the last TokenFrame may have final=True")
    elif isinstance(stage, Decoder):
        latent = stage.decode(inputs["tokens"], inputs.get("phonemes"))
        if not isinstance(latent, FeatureFrame):
            _fail(stage, "decode() must return a FeatureFrame")
    elif isinstance(stage, Vocoder):
        out = _check_audio(stage, stage.synthesize(inputs["latent"]), None, stage.sample_rate, "synthesize()")
        if len(out.samples) == 0:
            _fail(stage, "synthesize() returned no audio")
    elif isinstance(stage, AudioSink):
        stage.open(sample_rate, block_size)
        stage.write(np.zeros(block_size, np.float32))
        stage.close()
    elif isinstance(stage, AudioSource):
        stage.open(sample_rate, block_size)
        got = stage.read()
        if got is not None and (got.dtype != np.float32 or got.shape != (block_size,)):
            _fail(stage, f"read() must return ({block_size},) float32 or None")
        stage.close()
    return stage
