"""One loaded Piper voice: its ONNX session and the espeak-ng program that makes its phonemes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from anchorvoice.errors import CheckpointError, PluginError, StageError
from anchorvoice.plugins.piper.phonemes import PhonemeIds, Phonemizer, ipa_of, to_ids, warn_dropped
from anchorvoice.plugins.piper.voice_files import PiperVoiceFiles, check_model_inputs, read_voice_files

log = logging.getLogger(__name__)


def load_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or PluginError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise PluginError(
            f"Piper voices need the Python package onnxruntime, which cannot be imported ({exc}): "
            "pip install onnxruntime (or reinstall anchorvoice: `make venv`)"
        ) from None
    return onnxruntime


class PiperModel:
    """A Piper voice ready to speak: ``speak(sentence)`` -> float32 samples at ``files.sample_rate``."""

    def __init__(self, model: str | Path, phonemize: Phonemizer, *, threads: int = 2) -> None:
        self.files: PiperVoiceFiles = read_voice_files(model)
        self._phonemize = phonemize
        ort = load_onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.files.model), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise CheckpointError(f"Piper voice {self.files.model}: onnxruntime cannot load it ({exc}); "
                                  "download the .onnx again") from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        check_model_inputs(self.files, self._inputs)
        self._probe()

    def _probe(self) -> None:
        """Run the highest id of the map once: a map made for a bigger symbol table fails here, not mid-stream."""
        top = max(i for ids in self.files.id_map.values() for i in ids)
        try:
            self._run([self.files.id_map["^"][0], top, self.files.id_map["$"][0]], None)
        except Exception as exc:
            raise CheckpointError(
                f"Piper voice {self.files.model}: its config {self.files.config.name} does not match the model "
                f"(id {top} fails: {str(exc)[:200]}); use the .onnx.json published with this .onnx"
            ) from None

    def _run(self, ids: list[int], speaker: int | None, scales: tuple[float, float, float] | None = None) -> np.ndarray:
        f = self.files
        noise, length, noise_w = scales or (f.noise_scale, f.length_scale, f.noise_w)
        feeds: dict[str, np.ndarray] = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([noise, length, noise_w], dtype=np.float32),
        }
        if "sid" in self._inputs:
            feeds["sid"] = np.asarray([speaker or 0], dtype=np.int64)
        out = self._session.run(None, feeds)[0]
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1))

    def ids(self, sentence: str) -> PhonemeIds:
        """The sentence's phoneme ids (characters the map lacks dropped with a warning)."""
        phon = to_ids(ipa_of(sentence, self._phonemize), self.files.id_map)
        warn_dropped(phon.dropped, self.files.name, sentence)
        return phon

    def speak(self, sentence: str, *, speaker: int | None = None,
              scales: tuple[float, float, float] | None = None) -> np.ndarray:
        """Samples of one sentence (empty when it has nothing the voice can say)."""
        phon = self.ids(sentence)
        if len(phon.ids) <= 3:  # ^ _ $: nothing speakable
            return np.zeros(0, np.float32)
        try:
            return self._run(phon.ids, speaker, scales)
        except Exception as exc:
            raise StageError(f"Piper voice {self.files.name} failed on {sentence[:60]!r}: {exc}") from None
