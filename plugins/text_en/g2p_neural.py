"""Pronounce English words found in no dictionary: g2p_en's letter-to-phoneme network, as the official does.

The official frontend sends a word it cannot look up or split to g2p_en's ``predict``: a GRU encoder
over the letters and a GRU decoder that emits phonemes greedily (at most 20). The weights are g2p_en
2.1.0's ``checkpoint20.npz`` (package data ``g2p_en_checkpoint20.npz``, Apache-2.0, see
``LEXICON_NOTICE.md``): 256-wide embeddings and GRUs (PyTorch gate order r, z, n), float32, read with
``allow_pickle=False``. The computation below is ours, in the same float32 steps, so the phonemes equal
the official ones.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import numpy.typing as npt

from anchorvoice.errors import PluginError

DATA_FILE = "g2p_en_checkpoint20.npz"
GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
PHONEMES = (
    "<pad>", "<unk>", "<s>", "</s>",
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2", "AW0", "AW1", "AW2",
    "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2",
    "F", "G", "HH", "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1",
    "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1",
    "UW2", "V", "W", "Y", "Z", "ZH",
)
"""Output classes in g2p_en's order (index 2 starts decoding, 3 ends it)."""
MAX_PHONES = 20
_DROPPED = frozenset(("<pad>", "<s>", "</s>", "UW"))
"""The official ``g2p`` drops these from the output and writes "<unk>" as "UNK"."""
_NAMES = ("enc_emb", "enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh",
          "dec_emb", "dec_w_ih", "dec_w_hh", "dec_b_ih", "dec_b_hh", "fc_w", "fc_b")

F32 = npt.NDArray[np.float32]


@functools.cache
def _weights() -> dict[str, F32]:
    """The checkpoint's arrays, read once per process (every frontend shares them; never written)."""
    try:
        with resources.files("anchorvoice.plugins.text_en").joinpath(DATA_FILE).open("rb") as f, \
                np.load(f, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name], dtype=np.float32) for name in _NAMES}
    except (FileNotFoundError, KeyError, ValueError, OSError) as e:
        raise PluginError(f"plugins/text_en/{DATA_FILE} is missing or damaged ({e}); reinstall anchorvoice") from None
    if arrays["enc_emb"].shape[0] != len(GRAPHEMES) or arrays["fc_w"].shape[0] != len(PHONEMES):
        raise PluginError(f"plugins/text_en/{DATA_FILE} does not fit g2p_en's letters and phonemes; "
                          "reinstall anchorvoice")
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def _gru_step(x: F32, h: F32, w_ih: F32, w_hh: F32, b_ih: F32, b_hh: F32) -> F32:
    """One GRU cell step for a (1, width) input: r, z from the summed gates, n from r-scaled recurrence."""
    gi = np.matmul(x, w_ih.T) + b_ih
    gh = np.matmul(h, w_hh.T) + b_hh
    cut = gi.shape[-1] * 2 // 3
    rz = 1 / (1 + np.exp(-(gi[:, :cut] + gh[:, :cut])))
    r, z = np.split(rz, 2, -1)
    n = np.tanh(gi[:, cut:] + r * gh[:, cut:])
    out: F32 = (1 - z) * n + z * h
    return out


class NeuralG2p:
    """g2p_en's network: a lower-case word -> ARPAbet phonemes with stress."""

    def weights(self) -> dict[str, F32]:
        """The network's arrays (read on first use; call it to read them ahead)."""
        return _weights()

    def pronounce(self, word: str) -> list[str]:
        w = _weights()
        ids = [GRAPHEMES.index(c) if c in GRAPHEMES[3:] else 1 for c in word] + [2]
        x = np.take(w["enc_emb"], np.expand_dims(ids, 0), axis=0)
        h = np.zeros((1, w["enc_w_hh"].shape[1]), np.float32)
        for t in range(len(ids)):
            h = _gru_step(x[:, t, :], h, w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"])
        dec = np.take(w["dec_emb"], [2], axis=0)
        phones: list[str] = []
        for _ in range(MAX_PHONES):
            h = _gru_step(dec, h, w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"])
            best = int((np.matmul(h, w["fc_w"].T) + w["fc_b"]).argmax())
            if best == 3:
                break
            phones.append(PHONEMES[best])
            dec = np.take(w["dec_emb"], [best], axis=0)
        return ["UNK" if p == "<unk>" else p for p in phones if p not in _DROPPED]
