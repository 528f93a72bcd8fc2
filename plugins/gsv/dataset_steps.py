"""GPT-SoVITS v2 training-set files, as ``DatasetStep`` stages (formats of the official prepare scripts).

* ``gsv-text`` (1-get-text.py): ``2-name2text.txt`` lines ``name<TAB>phones<TAB>word2ph<TAB>norm_text``
  (phones space-separated; word2ph a Python list for zh/yue, ``None`` otherwise) and, for Chinese when
  a BERT folder is given, ``3-bert/<name>.pt`` (1024, P) float32. Other languages get no BERT file:
  the official trainer uses zeros for them.
* ``gsv-hubert`` (2-get-hubert-wav32k.py): ``5-wav32k/<name>`` (int16, the 0.95/0.5 max/alpha mix
  of the clip) and ``4-cnhubert/<name>.pt``, HuBERT ``last_hidden_state`` as (1, 768, T) float32 of
  the same mix scaled to 1145.14 and resampled to 16 kHz (soxr HQ, librosa's default).
* ``gsv-semantic`` (3-get-semantic.py): ``6-name2semantic.tsv``, header ``item_name<TAB>semantic_audio``
  then ``name<TAB>tokens``, tokens from the base SoVITS's frozen ``extract_latent`` (ssl_proj + RVQ).

``.pt`` files hold one plain tensor (``torch.save``) and are read back with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from anchorvoice.audio_io import read_audio, resample
from anchorvoice.engine.dataset.store import atomic_write, file_sha256
from anchorvoice.engine.dataset_stages import DatasetClip, DatasetStep
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import TextFrontend
from anchorvoice.errors import DatasetError, StageError
from anchorvoice.plugins.text_common.base import GsvFrontend
from anchorvoice.plugins.text_common.registry import frontend_for_language
from anchorvoice.plugins.text_en.pos_tagger import TAGGER_NAME, find_tagger

FAMILY = "gpt-sovits"
WAV_MAX, WAV_ALPHA = 0.95, 0.5
"""2-get-hubert-wav32k.py: maxx, alpha of the loudness mix."""
HUBERT_SCALE = 1145.14
"""2-get-hubert-wav32k.py feeds HuBERT the mix at this scale (the first GroupNorm makes it nearly moot)."""


def tensor_bytes(t: torch.Tensor) -> bytes:
    """``torch.save`` of one plain tensor (no code, loadable with ``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save(t.detach().cpu().clone(memory_format=torch.contiguous_format), buf)  # own storage: not a view's
    return buf.getvalue()


def load_tensor(path: Path) -> torch.Tensor:
    """A ``.pt`` holding one tensor, read without unpickling code."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, torch.Tensor):
        raise DatasetError(f"{path} does not hold a tensor; delete it and run `dataset make` again")
    return obj


def _folder_fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in (".json", ".bin", ".safetensors"):
            h.update(p.name.encode() + file_sha256(p).encode())
    return h.hexdigest()


def _hubert_width(folder: Path) -> int:
    import json

    try:
        return int(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("hidden_size", 768))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{folder}/config.json is unreadable ({exc}); give a chinese-hubert-base folder") from None


class GsvTextStep(DatasetStep):
    """Transcripts -> phones (+ Chinese BERT features) through the same text frontends as TTS."""

    name = "gsv-text"
    family = FAMILY
    order = 10

    def bind(self, models: dict[str, Path], plugins: Any) -> None:
        assert isinstance(plugins, PluginManager)
        self._plugins = plugins
        self._bert = models.get("bert")
        self._frontends: dict[str, TextFrontend] = {}
        self._languages: set[str] = set()

    def fingerprint(self) -> str:
        return _folder_fingerprint(self._bert) if self._bert else ""

    def settings_key(self) -> str:
        """Which homograph tagger the English frontend uses: installing NLTK's redoes the text."""
        tagger = find_tagger("auto")
        return f"tagger={tagger}" if tagger is not None else "tagger=rules"

    def notes(self) -> list[str]:
        if "en" not in self._languages or find_tagger("auto") is not None:
            return []
        return [f"English homographs (use, record, read...) were read by built-in rules: NLTK's "
                f"{TAGGER_NAME} was not found, and the official prepare scripts read them with it. For the "
                "official readings set NLTK_DATA to the nltk_data folder of a GPT-SoVITS install and run "
                "`dataset make` again (only the text is redone)"]

    def _frontend(self, language: str) -> TextFrontend:
        if language not in self._frontends:
            cls = frontend_for_language(self._plugins, language)
            cfg = cls.Config()
            if self._bert is not None and hasattr(cfg, "bert_path"):
                cfg.bert_path = str(self._bert)
            if hasattr(cfg, "keep_pauses"):
                cfg.keep_pauses = False  # the official text column drops the marks it drops
            fe = cls(cfg)
            fe.prepare(None)
            self._frontends[language] = fe
        return self._frontends[language]

    def outputs(self, clip: DatasetClip, folder: Path) -> list[Path]:
        out = [folder / ".cache" / "text" / f"{clip.name}.txt"]
        if clip.language == "zh" and self._bert is not None:
            out.append(folder / "3-bert" / f"{clip.name}.pt")
        return out

    def process(self, clip: DatasetClip, folder: Path) -> None:
        fe = self._frontend(clip.language)
        text = clip.text.replace("%", "-").replace("￥", ",")  # as 1-get-text.py does
        if isinstance(fe, GsvFrontend):
            norm, phones, word2ph = fe.g2p(text)
        else:
            from anchorvoice.frames import TextFrame

            frame = fe.phonemize(TextFrame(text, clip.language))
            norm, phones, word2ph = frame.text, list(frame.symbols), list(frame.word2ph)
        if not phones:
            raise DatasetError(f"{clip.name}: nothing speakable in its transcript {clip.text[:40]!r}; fix the .list")
        w2p = str(word2ph) if clip.language in ("zh", "yue") else "None"
        if clip.language == "zh" and self._bert is not None and isinstance(fe, GsvFrontend):
            bert = fe.bert_features(norm, phones, word2ph)
            if bert is not None:
                atomic_write(folder / "3-bert" / f"{clip.name}.pt", tensor_bytes(torch.from_numpy(np.asarray(bert))))
        atomic_write(folder / ".cache" / "text" / f"{clip.name}.txt", f"{clip.name}\t{' '.join(phones)}\t{w2p}\t{norm}")

    def finish(self, clips: list[DatasetClip], folder: Path) -> None:
        self._languages = {c.language for c in clips}
        lines = [(folder / ".cache" / "text" / f"{c.name}.txt").read_text(encoding="utf-8") for c in clips]
        atomic_write(folder / "2-name2text.txt", "\n".join(lines) + "\n")


class GsvHubertStep(DatasetStep):
    """Clips -> ``5-wav32k`` and HuBERT features ``4-cnhubert/<name>.pt`` (1, 768, T)."""

    name = "gsv-hubert"
    family = FAMILY
    order = 20
    needs = ("hubert",)
    batch_seconds = 40.0
    _writer: ThreadPoolExecutor | None = None
    _pending: Future[None] | None = None
    """HuBERT's row-wise GEMMs run over the frames of up to this much audio at once (a 2-core CPU runs
    them faster on ~2000 rows than on the ~250 of a 5 s clip); ~100 MB of activations."""

    def bind(self, models: dict[str, Path], plugins: Any) -> None:
        from anchorvoice.plugins.gsv.checkpoints import load_hubert
        from anchorvoice.plugins.gsv.hubert import build_hubert

        self._dir = Path(models["hubert"])
        self._model = build_hubert(load_hubert(self._dir))

    def fingerprint(self) -> str:
        return _folder_fingerprint(self._dir)

    def outputs(self, clip: DatasetClip, folder: Path) -> list[Path]:
        return [folder / "5-wav32k" / clip.name, folder / "4-cnhubert" / f"{clip.name}.pt"]

    def process(self, clip: DatasetClip, folder: Path) -> None:
        self.process_many([clip], folder)
        self._written()

    def _written(self) -> None:
        """Wait for the previous batch's files (and raise what writing them raised)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.result()
        except OSError as exc:
            raise DatasetError(f"gsv-hubert: writing the features failed ({exc}); free disk space or fix the "
                               "folder's permissions, then run `dataset make` again (finished clips are kept)") from exc

    def process_many(self, clips: list[DatasetClip], folder: Path) -> None:
        """The clips' HuBERT runs as one packed batch (:meth:`HubertModel.forward_packed`: each clip's
        features are what it gives alone, to float32 rounding). Their files are written on a thread while the
        next batch computes (the fsyncs wait on the disk, not the CPU); the next call and :meth:`finish` wait
        for them. A run killed before they land has them missing, so the next run makes them again."""
        self._written()
        mixes, wavs = [], []
        for clip in clips:
            x = read_audio(clip.path, 32000).samples.astype(np.float32)
            peak = float(np.abs(x).max())
            if not 0 < peak <= 2.2:  # the official step filters peaks above 2.2 too
                raise DatasetError(f"{clip.name}: peak {peak:.2f} cannot be normalised; delete the clip and re-run")
            mixes.append(x / peak * (WAV_MAX * WAV_ALPHA * 32768) + ((1 - WAV_ALPHA) * 32768) * x)
            mix_h = x / peak * (WAV_MAX * WAV_ALPHA * HUBERT_SCALE) + ((1 - WAV_ALPHA) * HUBERT_SCALE) * x
            wavs.append(torch.from_numpy(resample(mix_h.astype(np.float32), 32000, 16000)))
        with torch.inference_mode():
            feats = self._model.forward_packed(wavs)
        for clip, ssl in zip(clips, feats, strict=True):
            if torch.isnan(ssl).any():
                raise StageError(f"{clip.name}: HuBERT returned NaN features (damaged HuBERT weights?)")
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="gsv-hubert-writer")
        self._pending = self._writer.submit(self._write, clips, mixes, feats, folder)

    @staticmethod
    def _write(clips: list[DatasetClip], mixes: list[np.ndarray], feats: list[torch.Tensor], folder: Path) -> None:
        for clip, mix32, ssl in zip(clips, mixes, feats, strict=True):
            buf = io.BytesIO()
            sf.write(buf, mix32.astype(np.int16), 32000, format="WAV", subtype="PCM_16")
            atomic_write(folder / "5-wav32k" / clip.name, buf.getvalue())
            atomic_write(folder / "4-cnhubert" / f"{clip.name}.pt", tensor_bytes(ssl.T[None].float()))  # (1, 768, T)

    def finish(self, clips: list[DatasetClip], folder: Path) -> None:
        self._written()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None


class GsvSemanticStep(DatasetStep):
    """HuBERT features -> 25 Hz semantic tokens through the base SoVITS's frozen quantizer."""

    name = "gsv-semantic"
    family = FAMILY
    order = 30
    needs = ("hubert", "sovits")

    def bind(self, models: dict[str, Path], plugins: Any) -> None:
        from anchorvoice.plugins.gsv.checkpoints import load_sovits
        from anchorvoice.plugins.gsv.semantic import SemanticTokenizer

        self._path = Path(models["sovits"])
        self._fingerprint = file_sha256(self._path)
        self._model = SemanticTokenizer.from_checkpoint(load_sovits(self._path))  # ssl_proj + RVQ only
        width = _hubert_width(Path(models["hubert"]))
        wants = self._model.ssl_proj.in_channels
        if width != wants:
            raise DatasetError(
                f"the HuBERT in {models['hubert']} gives {width}-d features, the SoVITS base {self._path.name} "
                f"reads {wants}-d ones: use the HuBERT the base was trained with (chinese-hubert-base for v2)"
            )

    def fingerprint(self) -> str:
        return self._fingerprint

    def outputs(self, clip: DatasetClip, folder: Path) -> list[Path]:
        return [folder / ".cache" / "semantic" / f"{clip.name}.txt"]

    def process(self, clip: DatasetClip, folder: Path) -> None:
        feats = folder / "4-cnhubert" / f"{clip.name}.pt"
        if not feats.is_file():
            raise DatasetError(f"{feats} is missing; run `dataset make` with --hubert so the gsv-hubert step writes it")
        with torch.inference_mode():
            codes = self._model.extract_latent(load_tensor(feats).float())  # (1, n_q, T25)
        tokens = " ".join(str(int(t)) for t in codes[0, 0].tolist())
        atomic_write(folder / ".cache" / "semantic" / f"{clip.name}.txt", f"{clip.name}\t{tokens}")

    def finish(self, clips: list[DatasetClip], folder: Path) -> None:
        lines = ["item_name\tsemantic_audio"]
        lines += [(folder / ".cache" / "semantic" / f"{c.name}.txt").read_text(encoding="utf-8") for c in clips]
        atomic_write(folder / "6-name2semantic.tsv", "\n".join(lines) + "\n")
