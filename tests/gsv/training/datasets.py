"""Small training sets in the official GPT-SoVITS layout, made from real speech for the training tests.

HuBERT features come from the tiny 768-wide random HuBERT of :mod:`tests.gsv_voice` on the real
16 kHz clips, the semantic tokens from the base SoVITS's own quantizer (as ``3-get-semantic`` makes
them), phones are v2 ARPAbet symbols; wavs are 32 kHz as ``5-wav32k`` holds them.
"""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
import torch

from anchorvoice.audio_io import read_audio
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
from tests.conftest import asterisk_clip
from tests.gsv_voice import TINY_768

CLIPS = {
    "auth-thankyou": ("thank you", "TH AE1 NG K Y UW1 ."),
    "calling": ("calling", "K AO1 L IH0 NG ."),
    "cancelled": ("cancelled", "K AE1 N S AH0 L D ."),
    "activated": ("activated", "AE1 K T AH0 V EY2 T IH0 D ."),
    "added": ("added", "AE1 D IH0 D ."),
    "beep": ("beep", "B IY1 P ."),
}


def make_dataset(root: Path, base_sovits: Path, n: int = 4, seconds: float = 1.0) -> Path:
    """Write ``n`` utterances (each cut to ``seconds``) to ``root`` in the official layout."""
    names = list(CLIPS)[:n]
    for nm in names:
        asterisk_clip(nm)
    torch.manual_seed(0)
    hubert = HubertModel(HubertConfig.from_json(TINY_768)).eval()
    s2 = SynthesizerTrn.from_checkpoint(load_sovits(base_sovits))
    for sub in ("4-cnhubert", "5-wav32k"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    text_lines, sem_lines, list_lines = [], ["item_name\tsemantic_audio"], []
    for nm in names:
        wav_name = f"{nm}.wav"
        a32 = read_audio(asterisk_clip(nm), 32000).samples[: int(32000 * seconds)]
        sf.write(str(root / "5-wav32k" / wav_name), a32, 32000, subtype="PCM_16")
        a16 = torch.from_numpy(read_audio(root / "5-wav32k" / wav_name, 16000).samples)
        with torch.no_grad():
            ssl = hubert(a16[None]).transpose(1, 2)  # (1, 768, T50)
            tokens = s2.extract_latent(ssl)[0, 0]
        torch.save(ssl.half(), root / "4-cnhubert" / f"{wav_name}.pt")
        text, phones = CLIPS[nm]
        text_lines.append(f"{wav_name}\t{phones}\t{' '.join('1' for _ in phones.split())}\t{text}")
        sem_lines.append(f"{wav_name}\t{' '.join(map(str, tokens.tolist()))}")
        list_lines.append(f"/data/{wav_name}|spk|EN|{text}")
    (root / "2-name2text.txt").write_text("\n".join(text_lines) + "\n", encoding="utf-8")
    (root / "6-name2semantic.tsv").write_text("\n".join(sem_lines) + "\n", encoding="utf-8")
    (root / "voice.list").write_text("\n".join(list_lines) + "\n", encoding="utf-8")
    return root
