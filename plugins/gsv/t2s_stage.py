"""``gsv-t2s``: the GPT-SoVITS v2 GPT prosody stage (phonemes -> 25 Hz semantic tokens, streamed).

As the official inference does, the reference's phonemes come first: the model sees
``prompt phones + text phones`` (BERT features concatenated the same way, zeros where a frame has
none) followed by the reference's semantic tokens, and continues the token sequence. Without a
prompt (both ``prompt_text`` and ``prompt_tokens`` None) it decodes reference-free.

Streaming: :meth:`GsvT2S.generate` yields ``TokenFrame`` chunks of ``chunk_tokens`` tokens as
they are decoded, ``final=True`` on the last (never empty unless nothing was generated). Like
the official ``streaming_mode``, every generated token is emitted (the non-streaming official
path additionally drops the first token when it stops on the length limit; see
``DecodeResult.official_semantic``). :meth:`GsvT2S.generate_batch` decodes several sentences
together with left padding (official ``infer_panel_batch_infer``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from anchorvoice.engine.stages import ProsodyModel
from anchorvoice.errors import CheckpointError, StageError, TextInputError
from anchorvoice.frames import AudioFrame, PhonemeFrame, TokenFrame
from anchorvoice.plugins.cpu_threads import AdaptiveThreads
from anchorvoice.plugins.gsv.checkpoints import check_phoneme_vocab, sovits_text_rows
from anchorvoice.plugins.gsv.kv_cache import T2SRuntime
from anchorvoice.plugins.gsv.prompt_rules import closed_sentence, lead_short_sentence, padded_reference
from anchorvoice.plugins.gsv.t2s_model import BERT_DIM, Text2SemanticDecoder, load_t2s
from anchorvoice.plugins.gsv.t2s_sampling import (
    DecodeResult,
    SamplingConfig,
    decode_batch,
    decode_stream,
    make_generator,
)

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

TOKEN_RATE = 25.0
"""Semantic tokens per second (v2 ``semantic_frame_rate`` 25hz)."""


@dataclass
class GsvT2SConfig:
    """Parameters of the ``gsv-t2s`` prosody stage (sampling defaults = official inference defaults)."""

    gpt_path: str = ""
    """GPT (s1) ``.ckpt`` to use; empty: the voice's ``models["gpt"]``."""
    chunk_tokens: int = 24
    """Tokens per streamed TokenFrame (24 = 0.96 s; official streaming ``chunk_length``)."""
    top_k: int = 15
    """Sample among the k most likely tokens (1 = greedy)."""
    first_chunk_tokens: int = 16
    """Tokens in the first TokenFrame (0 = chunk_tokens): smaller means earlier first audio. 16 tokens
    give 32 latent frames, enough (after the decoder holds 8 back) for the vocoder's first 20-frame chunk."""
    max_chunk_tokens: int = 96
    """Later TokenFrames double from ``chunk_tokens`` up to this size (0 = every frame ``chunk_tokens``).
    Audio is ahead of playback once it starts, and every TokenFrame costs the decoder a pass over the
    sequence so far and the vocoder a window of context: fewer, larger frames cut both (96 = 3.84 s)."""
    top_p: float = 1.0
    """Nucleus threshold (1 = off)."""
    temperature: float = 1.0
    """Sampling temperature."""
    repetition_penalty: float = 1.35
    """Penalty on tokens already in prompt + output (1 = off)."""
    seed: int | None = None
    """Seed: the same input and seed give the same tokens; None draws a fresh seed per utterance."""
    early_stop_num: int = -1
    """Token limit; -1 = the checkpoint's 50 * data.max_sec (official); the 1500-step cap always holds."""
    precision: Literal["float32", "bfloat16", "int8"] = "float32"
    """Decoder arithmetic: float32 (exact) or a reduced mode (faster, tokens may differ; see bench/t2s_rtf.py)."""
    device: str = "cpu"
    """torch device."""
    fused_step: bool = True
    """On CPU, run each float32 decode step as one numba call for all layers, on a float32 copy of the
    layers' weights (302 MB more memory at full size, 1.25-1.5x faster); False keeps the per-layer ATen calls
    and the memory. int8 always runs its step fused."""
    int8_cache: bool = True
    """In ``int8`` precision, attend over an int8 copy of the KV cache (one scale per position and head; a
    quarter of the bytes the step reads per cached position: 15% faster per token at 400 positions, same
    top-1 agreement with float32 in bench/t2s_rtf.py); False attends over the float32 cache."""
    adaptive_threads: bool = True
    """On CPU, run each decode step on all of torch's threads or on one, whichever the last steps
    measured faster (:mod:`anchorvoice.streaming.thread_governor`): on a busy PC two threads can be
    10x slower than one. False: always torch's count. Thread counts change only the float rounding."""


class GsvT2S(ProsodyModel):
    """GPT-SoVITS v2 T2S with a preallocated KV cache."""

    name = "gsv-t2s"
    Config = GsvT2SConfig

    def __init__(self, config: GsvT2SConfig | None = None) -> None:
        super().__init__(config)
        self._runtime: T2SRuntime | None = None
        self._loaded: Path | None = None
        self._runtime_key: tuple[str, str, bool, bool] = ("", "", True, True)
        self.threads = AdaptiveThreads()

    # -- model binding ---------------------------------------------------------------------
    def prepare(self, voice: Voice | None) -> None:
        src = self.config.gpt_path or (voice.models.get("gpt") if voice is not None else None)
        if not src:
            raise CheckpointError(
                "the gsv-t2s stage needs a GPT (s1) .ckpt: set params.gpt_path in the pipeline, or add "
                "the voice with --gpt FILE (anchorvoice voices add NAME --gpt FILE ...)"
            )
        path = Path(src).expanduser().resolve()
        if path != self._loaded:
            model = load_t2s(path)
            sovits = voice.models.get("sovits") if voice is not None else None
            if sovits:
                # refuse a GPT/SoVITS pair of different versions before anything is synthesised
                rows = sovits_text_rows(Path(sovits))
                if rows is not None:
                    check_phoneme_vocab(model.config.phoneme_vocab_size, rows)
            self._bind(model, path)

    def load_model(self, model: Text2SemanticDecoder) -> None:
        """Use an already built model (tests, benchmarks, a caller that shares one model); it is never
        released (see :meth:`_bind`)."""
        self._bind(model, None)

    def _bind(self, model: Text2SemanticDecoder, source: Path | None) -> None:
        """Build the runtime for ``model``. ``source``: the file this stage loaded it from itself; an int8
        CPU runtime of such a model runs without the model's float32 layer weights, so they are freed
        (302 MB at full size) and a live change of precision reads the file again."""
        model = model.to(self.config.device).eval()
        try:
            runtime = T2SRuntime(
                model, self.config.precision, fused_step=self.config.fused_step, int8_cache=self.config.int8_cache
            )
        except ValueError as exc:
            raise StageError(f"gsv-t2s: {exc} (fix params.precision / params.device)") from None
        self._runtime, self._runtime_key, self._loaded = runtime, self._key(), source
        if source is not None and runtime.precision == "int8":
            runtime.release_layers()

    @property
    def model(self) -> Text2SemanticDecoder:
        """The loaded GPT. After ``prepare`` in ``int8`` on CPU its transformer layers are on the ``meta``
        device (released: only the runtime's int8 copies remain); config, embeddings and head are real."""
        return self._ready().model

    def _ready(self) -> T2SRuntime:
        if self._runtime is None:
            raise StageError("gsv-t2s: prepare(voice) must load a GPT model before generate()")
        if self._runtime_key != self._key():  # changed live via set_param
            source = self._loaded  # only a model read from a file is ever released
            if source is not None and self._runtime.layers_released:
                self._bind(load_t2s(source), source)
            else:
                self._bind(self._runtime.model, source)
        return self._runtime

    def _key(self) -> tuple[str, str, bool, bool]:
        """The settings a runtime is built for."""
        return (self.config.precision, self.config.device, self.config.fused_step, self.config.int8_cache)

    def close(self) -> None:
        self._runtime, self._loaded = None, None

    # -- the official inference's prompt and text rules ------------------------------------
    def prompt_reference(self, reference: AudioFrame) -> AudioFrame:
        """0.3 s of zeros appended (:func:`~.prompt_rules.padded_reference`)."""
        return padded_reference(reference)

    def prompt_text(self, text: str, language: str) -> str:
        """A final stop added when missing (:func:`~.prompt_rules.closed_sentence`)."""
        return closed_sentence(text, language)

    def plan_sentences(self, sentences: list[str], language: str) -> list[str]:
        """A stop before a very short first sentence (:func:`~.prompt_rules.lead_short_sentence`)."""
        return lead_short_sentence(sentences, language)

    # -- inputs ------------------------------------------------------------------------------
    def _sampling(self) -> SamplingConfig:
        cfg = self.config
        limit = cfg.early_stop_num if cfg.early_stop_num != -1 else self.model.config.early_stop_num
        sampling = SamplingConfig(
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            temperature=cfg.temperature,
            repetition_penalty=cfg.repetition_penalty,
            early_stop_num=limit,
        )
        try:
            sampling.validate()
        except ValueError as exc:
            raise StageError(f"gsv-t2s: {exc} (fix the stage params)") from None
        return sampling

    def _phones(self, text: PhonemeFrame, prompt_text: PhonemeFrame | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(P,) ids and (1024, P) BERT features of prompt phones + text phones."""
        if len(text.ids) == 0:
            raise TextInputError(f"nothing to speak in {text.text!r}: the frontend produced no phonemes")
        frames = [f for f in (prompt_text, text) if f is not None]
        vocab = self.model.config.phoneme_vocab_size
        ids, berts = [], []
        for f in frames:
            arr = np.asarray(f.ids, dtype=np.int64)
            if arr.size and (arr.min() < 0 or arr.max() >= vocab):
                raise StageError(
                    f"gsv-t2s: phoneme id {int(arr.max())} outside the GPT's phoneme vocabulary of {vocab}; "
                    "the text frontend's symbol table does not match this GPT version"
                )
            ids.append(torch.from_numpy(arr))
            bert = np.zeros((BERT_DIM, arr.size), np.float32) if f.bert is None else np.asarray(f.bert, np.float32)
            if bert.shape != (BERT_DIM, arr.size):
                raise StageError(f"gsv-t2s: BERT features must be ({BERT_DIM}, {arr.size}), got {bert.shape}")
            berts.append(torch.from_numpy(bert))
        device = self.config.device
        return torch.cat(ids).to(device), torch.cat(berts, dim=1).to(device)

    def _prompt(self, prompt_text: PhonemeFrame | None, prompt_tokens: TokenFrame | None) -> torch.Tensor | None:
        if (prompt_text is None) != (prompt_tokens is None):
            raise StageError(
                "gsv-t2s: give both the reference's phonemes and its semantic tokens, or neither (reference-free mode)"
            )
        if prompt_tokens is None:
            return None
        tokens = np.asarray(prompt_tokens.tokens, dtype=np.int64)
        eos = self.model.config.eos
        if tokens.ndim != 1 or tokens.size == 0 or tokens.min() < 0 or tokens.max() >= eos:
            raise StageError(
                f"gsv-t2s: prompt tokens must be a non-empty 1-D array of ids in [0, {eos}); "
                "they come from the gsv-rvq tokenizer run on the reference clip"
            )
        return torch.from_numpy(tokens).to(self.config.device)

    # -- generation ------------------------------------------------------------------------
    def generate(
        self,
        text: PhonemeFrame,
        prompt_text: PhonemeFrame | None = None,
        prompt_tokens: TokenFrame | None = None,
    ) -> Iterator[TokenFrame]:
        runtime = self._ready()
        cfg = self.config
        if cfg.chunk_tokens < 1 or cfg.first_chunk_tokens < 0 or cfg.max_chunk_tokens < 0:
            raise StageError(
                f"gsv-t2s: chunk_tokens must be >= 1, first_chunk_tokens and max_chunk_tokens >= 0, got "
                f"{cfg.chunk_tokens}, {cfg.first_chunk_tokens} and {cfg.max_chunk_tokens}"
            )
        phones, bert = self._phones(text, prompt_text)
        prompt = self._prompt(prompt_text, prompt_tokens)
        stream = decode_stream(runtime, phones, bert, prompt, self._sampling(), make_generator(self.config.seed),
                               threads=self.threads if cfg.adaptive_threads else None)
        sizes = _chunk_sizes(cfg.first_chunk_tokens, cfg.chunk_tokens, cfg.max_chunk_tokens)
        chunk = next(sizes)
        pending: list[int] = []
        emitted = 0
        for token in stream:
            pending.append(token)
            # hold one token back so that the last frame (final=True) is never empty
            if len(pending) > chunk:
                yield self._frame(pending[:chunk], text, emitted, final=False)
                emitted += chunk
                pending = pending[chunk:]
                chunk = next(sizes)
        yield self._frame(pending, text, emitted, final=True)

    @staticmethod
    def _frame(tokens: list[int], text: PhonemeFrame, offset: int, final: bool) -> TokenFrame:
        return TokenFrame(
            tokens=np.asarray(tokens, dtype=np.int64),
            frame_rate=TOKEN_RATE,
            final=final,
            timestamp=text.timestamp + offset / TOKEN_RATE,
        )

    def generate_batch(
        self,
        texts: Sequence[PhonemeFrame],
        prompt_text: PhonemeFrame | None = None,
        prompt_tokens: TokenFrame | None = None,
    ) -> list[TokenFrame]:
        """Decode several sentences in one batch; one final TokenFrame per sentence, in order.

        Each frame holds what the official batched path hands to SoVITS (``y[-idx:]``).
        """
        runtime = self._ready()
        if not texts:
            raise TextInputError("generate_batch needs at least one sentence")
        inputs = [self._phones(t, prompt_text) for t in texts]
        prompt = self._prompt(prompt_text, prompt_tokens)
        results: list[DecodeResult] = decode_batch(
            runtime,
            [p for p, _ in inputs],
            [b for _, b in inputs],
            prompt,
            self._sampling(),
            make_generator(self.config.seed),
        )
        return [
            TokenFrame(
                tokens=r.official_semantic.cpu().numpy().astype(np.int64),
                frame_rate=TOKEN_RATE,
                final=True,
                timestamp=t.timestamp,
            )
            for r, t in zip(results, texts, strict=True)
        ]


def _chunk_sizes(first: int, chunk: int, largest: int) -> Iterator[int]:
    """TokenFrame sizes: ``first`` (or ``chunk``), then ``chunk`` doubling up to ``largest`` (0: constant)."""
    yield first or chunk
    while True:
        yield chunk
        if largest > chunk:
            chunk = min(2 * chunk, largest)
