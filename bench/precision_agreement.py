"""How close the bfloat16 modes come to float32 on real human speech, through the paths users run.

Usage: ``.venv/bin/python -m bench.precision_agreement [--clips 20] [--threads 2]`` (from the repository root).

Input: the first ``--clips`` Asterisk prompts (real speech of one human speaker, Debian's
``asterisk-core-sounds-en-g722``), each converted by ``gsv-vc`` (HuBERT -> RVQ tokens -> SoVITS prior
-> HiFi-GAN) with full-size random-weight v2 models (:mod:`bench.fullsize`; no trained model is
reachable here) and a fixed prior noise seed, four ways:

* ``float32``: the exact mode (the reference);
* ``vocoder bf16``: float32 HuBERT and prior, the HiFi-GAN in bfloat16 (what ``gsv-hifigan``
  ``precision = "bfloat16"`` changes in TTS: the same latent, vocoded in bf16);
* ``hubert bf16``: HuBERT in bfloat16, the rest float32 (what changes the semantic tokens);
* ``all bf16``: ``gsv-vc`` ``precision = "bfloat16"`` (HuBERT and HiFi-GAN).

For each, per clip: SI-SNR (dB) and log-mel L1 (80 mels, the SoVITS training mel) of the audio
against float32, and the share of semantic tokens equal to float32's; the median and the worst clip
are printed. Random weights give a noise-like voice; the figures say how far the arithmetic moves the
output, not how it sounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.voices import Voice
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.gsv.stages_vc import GsvVcConfig, GsvVoiceConverter
from bench.fullsize import write_hubert, write_sovits
from bench.hubert_rtf import PROMPTS
from bench.machine import machine_line
from bench.sovits_rtf import audio_agreement

SR = 32000


def converters(voice: Voice) -> dict[str, GsvVoiceConverter]:
    out = {}
    for name, precision in (("float32", "float32"), ("vocoder bf16", "float32"), ("hubert bf16", "bfloat16"),
                            ("all bf16", "bfloat16")):
        vc = GsvVoiceConverter(GsvVcConfig(precision=precision, seed=0))  # type: ignore[arg-type]
        vc.prepare(voice)
        assert vc.sovits.model is not None
        if name == "vocoder bf16":
            vc.sovits.model.dec.use_precision("bfloat16")
        elif name == "hubert bf16":
            vc.sovits.model.dec.use_precision("float32")
        out[name] = vc
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line(args.threads))
    files = sorted(Path(PROMPTS).glob("*.g722"))[: args.clips]
    if not files:
        raise SystemExit(f"no Asterisk prompts in {PROMPTS}: apt install asterisk-core-sounds-en-g722")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_sovits(d / "s2.pth")
        write_hubert(d / "hubert")
        ref = read_audio(files[0], SR).samples
        sf.write(d / "ref.wav", ref, SR)
        voice = Voice("bench", d, [d / "ref.wav"], models={"sovits": d / "s2.pth", "hubert": d / "hubert"})
        vcs = converters(voice)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in vcs if name != "float32"}
        seconds = 0.0
        for f in files:
            x = read_audio(f, SR).samples.astype(np.float32)
            seconds += len(x) / SR
            exact = vcs["float32"].convert(AudioFrame(x, SR)).samples
            exact_tokens = vcs["float32"].tokens(x)
            for name, rs in rows.items():
                low = vcs[name].convert(AudioFrame(x, SR)).samples
                agree = audio_agreement(torch.from_numpy(exact), torch.from_numpy(low))
                agree["tokens_equal"] = float(np.mean(vcs[name].tokens(x) == exact_tokens))
                rs.append(agree)
    print(f"gsv-vc on {len(files)} real Asterisk prompts ({seconds:.1f} s of speech), full-size random weights, "
          f"against float32 (median / worst clip)")
    for name, rs in rows.items():
        snr = [r["si_snr_db"] for r in rs]
        mel = [r["log_mel_l1"] for r in rs]
        tok = [r["tokens_equal"] for r in rs]
        print(f"  {name:13s} SI-SNR {statistics.median(snr):6.1f} / {min(snr):6.1f} dB   "
              f"log-mel L1 {statistics.median(mel):.4f} / {max(mel):.4f}   "
              f"tokens equal {100 * statistics.median(tok):5.1f} / {100 * min(tok):5.1f} %")


if __name__ == "__main__":
    main()
