"""The ``hubert`` feature-extractor stage: 16 kHz audio -> HuBERT features (the model is in :mod:`.hubert`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from anchorvoice.engine.stages import FeatureExtractor
from anchorvoice.errors import AudioInputError, CheckpointError, StageError
from anchorvoice.frames import AudioFrame, FeatureFrame
from anchorvoice.plugins.cpu_kernels import resolve_precision
from anchorvoice.plugins.gsv.checkpoints import load_hubert
from anchorvoice.plugins.gsv.hubert import HubertModel, build_hubert

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice


@dataclass
class HubertExtractorConfig:
    """Parameters of the ``hubert`` feature extractor."""

    model_dir: str = ""
    """chinese-hubert-base folder (config.json + weights); empty: the voice's ``models["hubert"]``."""
    device: str = "cpu"
    """torch device to run on (``cpu``, ``cuda``, ``cuda:1``)."""
    precision: Literal["float32", "bfloat16", "auto"] = "float32"
    """``float32``: exact (conformance-tested). ``bfloat16``: the conv stack and transformer in bf16, ~1.7x
    faster on a CPU with AVX512-bf16/AMX (feature cosine to float32 in bench/hubert_rtf.py). ``auto``:
    ``bfloat16`` on such a CPU, else ``float32``."""


class HubertExtractor(FeatureExtractor):
    """16 kHz mono audio -> HuBERT ``last_hidden_state`` as ``FeatureFrame`` (hidden, T) at 50 Hz.

    The waveform goes in raw, exactly as GPT-SoVITS inference calls the model. Callers that want
    the official reference-prompt features append what ``inference_webui.get_tts_wav`` appends
    (0.3 x the SoVITS sampling rate of zeros, i.e. 9600 samples, to the 16 kHz reference) before
    calling ``extract``: the first-layer GroupNorm normalises over the whole clip, so padding
    changes every frame and this stage does not guess it.
    """

    name = "hubert"
    Config = HubertExtractorConfig
    sample_rate = 16000

    def __init__(self, config: HubertExtractorConfig | None = None) -> None:
        super().__init__(config)
        self._model: HubertModel | None = None
        self._loaded: Path | None = None

    def prepare(self, voice: Voice | None) -> None:
        folder = self.config.model_dir or (voice.models.get("hubert") if voice is not None else None)
        if not folder:
            raise CheckpointError(
                "the hubert feature extractor needs a chinese-hubert-base folder: set params.model_dir "
                "in the pipeline, or add the voice with a 'hubert' model path"
            )
        path = Path(folder).expanduser().resolve()
        try:
            precision = resolve_precision(self.config.precision, torch.device(self.config.device).type)
        except ValueError as exc:
            raise StageError(f"hubert: {exc}") from None
        if path != self._loaded:
            self._model = build_hubert(load_hubert(path)).to(self.config.device)
            self._loaded = path
        assert self._model is not None
        self._model.use_precision(precision)

    @property
    def frame_rate(self) -> float:
        """Feature frames per second (50 for the base config)."""
        if self._model is None:
            return self.sample_rate / 320
        return self.sample_rate / math.prod(self._model.config.conv_stride)

    def extract(self, audio: AudioFrame) -> FeatureFrame:
        if self._model is None:
            raise StageError("hubert: prepare(voice) must load the model before extract()")
        if audio.sample_rate != self.sample_rate:
            raise AudioInputError(f"hubert needs {self.sample_rate} Hz audio, got {audio.sample_rate} Hz; resample")
        if len(audio.samples) < self._model.min_samples:
            raise AudioInputError(
                f"hubert needs at least {self._model.min_samples} samples "
                f"({self._model.min_samples / self.sample_rate * 1000:.0f} ms), got {len(audio.samples)}"
            )
        wav = torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32))
        with torch.inference_mode():
            hidden = self._model(wav.to(self.config.device)[None])[0]  # (T, D)
        return FeatureFrame(features=hidden.t().contiguous(), frame_rate=self.frame_rate, timestamp=audio.timestamp)

    def close(self) -> None:
        self._model, self._loaded = None, None
