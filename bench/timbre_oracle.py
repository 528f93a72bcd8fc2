"""How far frame-wise envelope transfer can move a speaker encoder: the DSP converter's ceiling on same-sex pairs.

Usage: ``.venv/bin/python bench/timbre_oracle.py [--clips 2]`` (needs ``pip install 'anchorvoice[bench]'``).

The default converter (pitch, a formant shift and one equaliser) moves speaker similarity a lot
across sexes and hardly between two voices of the same sex (``bench/voice_quality.py``). This study
asks whether any envelope-only transfer could do better, by giving it what no converter has:

* ``base``: ``Engine.convert`` (the default converter) of the input clip;
* ``oracle``: that output, each frame filtered so that its envelope becomes the envelope the TARGET
  speaker had on the same sound, taken from the target saying the same sentence and aligned by
  dynamic time warping on mean-removed log-mel frames (``oracle50``: half of that in dB);
* ``knn50``: the same filter with half of the mean envelope of the 4 nearest frames of the voice's
  reference clip, matched on speaker-normalised (per-clip mean and variance) MFCCs and deltas:
  what a converter can do without the same sentence;
* ``target``: the target's own clip of the sentence (the top of the scale).

Per row (target <- input) it prints the median over ``--clips`` clips of the similarity gain over the
input (Resemblyzer's GE2E, as ``voice_quality``), Whisper tiny.en WER and DNSMOS overall, then the
medians and worst cases over rows. Filtering: 32 ms frames at 8 ms, per-frame gain = the wanted
envelope minus the current one (level removed, within +-18 dB, cepstrally smoothed), overlap-add.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
from scipy.fft import dct

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anchorvoice.audio_io import resample, write_audio  # noqa: E402
from anchorvoice.engine.engine import Engine, EngineConfig  # noqa: E402
from anchorvoice.frames import AudioFrame  # noqa: E402
from anchorvoice.plugins.dsp import analysis as an  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from bench.speaker_encoder import cosine  # noqa: E402
from bench.voice_quality import SR, Judges, speakers, transcripts, wer  # noqa: E402

PAIRS = [("allison", "slt"), ("slt", "allison"), ("slt", "awb"), ("rms", "slt"), ("allison", "rms"),
         ("awb", "rms"), ("rms", "kal"), ("rms", "awb"), ("awb", "kal"), ("kal", "rms")]
"""(target, input): same-sex pairs first (both directions), then male pairs; allison and slt are
female, rms, awb and kal male (flite's kal is a diphone voice)."""
LIMIT_DB = 18.0
QUIET_DB = 45.0
"""Frames this far under the clip's loudest are left alone (silence)."""
N_MELS = 40
N_MFCC = 20
NEIGHBOURS = 4


def _log_mel(x: np.ndarray) -> np.ndarray:
    import librosa

    power = np.abs(an.spectra(x)) ** 2
    mel = np.log(power @ librosa.filters.mel(sr=SR, n_fft=an.N_FFT, n_mels=N_MELS).T + 1e-8)
    return np.asarray(mel - mel.mean(axis=0))


@numba.njit(cache=True)
def _dtw_match(cost: np.ndarray) -> np.ndarray:
    """For each row i of a (n, m) cost matrix, the column its minimum-cost monotone path visits last."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    match = np.zeros(n, np.int64)
    i, j = n, m
    while i > 0 and j > 0:
        match[i - 1] = j - 1
        diag, up, left = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
        if diag <= up and diag <= left:
            i, j = i - 1, j - 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
    return match


def _envelopes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spectra, natural-log true envelopes, level dB) per analysis frame."""
    spec = an.spectra(x)
    frames = an.frames_of(x, an.N_FFT, an.HOP)
    return spec, an.log_envelopes(np.log(np.abs(spec) + 1e-7)), an.rms_db(frames)


def _refilter(y: np.ndarray, wanted: np.ndarray, amount: float) -> np.ndarray:
    """``y`` with each frame's envelope moved ``amount`` of the way (in dB) to ``wanted`` (F', bins)."""
    spec, env, level = _envelopes(y)
    n = min(len(env), len(wanted))
    gain = np.zeros_like(env)
    band = an.band_mask()
    diff = wanted[:n] - env[:n]
    diff -= diff[:, band].mean(axis=1, keepdims=True)
    limit = LIMIT_DB / an.TO_DB
    gain[:n] = np.clip(amount * diff, -limit, limit)
    gain[level < level.max() - QUIET_DB] = 0.0
    gain = an.envelope_of(an.cepstrum_of(gain))
    window = np.hanning(an.N_FFT + 1)[:-1]
    parts = np.fft.irfft(spec * np.exp(gain), an.N_FFT, axis=1) * window
    out = np.zeros(len(y) + an.N_FFT)
    norm = np.zeros_like(out)
    for i, part in enumerate(parts):
        out[i * an.HOP : i * an.HOP + an.N_FFT] += part
        norm[i * an.HOP : i * an.HOP + an.N_FFT] += window**2
    out = (out / np.maximum(norm, 1e-3))[: len(y)]
    return out * np.sqrt(np.mean(y**2) / max(float(np.mean(out**2)), 1e-12))


def oracle(y: np.ndarray, x: np.ndarray, same_text: np.ndarray, amount: float) -> np.ndarray:
    """Envelopes of the target saying the same sentence, aligned to the input ``x`` (``y``'s timing)."""
    a, b = _log_mel(x), _log_mel(same_text)
    cost = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None]
    _, target_env, _ = _envelopes(same_text)
    match = _dtw_match(np.maximum(cost, 0.0))
    return _refilter(y, target_env[np.minimum(match, len(target_env) - 1)], amount)


def _mfcc(x: np.ndarray) -> np.ndarray:
    c = dct(_log_mel(x), type=2, norm="ortho", axis=1)[:, 1:N_MFCC]
    c = (c - c.mean(axis=0)) / (c.std(axis=0) + 1e-6)
    return np.concatenate([c, 2.0 * np.gradient(c, axis=0)], axis=1)


def knn(y: np.ndarray, x: np.ndarray, reference: np.ndarray, amount: float) -> np.ndarray:
    """Mean envelope of the reference's nearest frames (normalised MFCCs) for each input frame."""
    query, pool = _mfcc(x), _mfcc(reference)
    _, ref_env, ref_level = _envelopes(reference)
    n = min(len(pool), len(ref_env))
    keep = ref_level[:n] > ref_level[:n].max() - 35.0
    pool, ref_env = pool[:n][keep], ref_env[:n][keep]
    dist = (query**2).sum(1)[:, None] - 2 * query @ pool.T + (pool**2).sum(1)[None]
    near = np.argpartition(dist, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]
    return _refilter(y, ref_env[near].mean(axis=1), amount)


def run(n_clips: int) -> dict[str, list[tuple[float, float, float]]]:
    spk = speakers(transcripts())
    judges = Judges()
    names = ("base", "oracle", "oracle50", "knn50", "target")
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in names}
    print(f"{'target <- input':18}" + "".join(f"{k:>22}" for k in names))
    print(f"{'':18}" + "".join(f"{'gain  wer  dnsmos':>22}" for _ in names))
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(EngineConfig(home=Path(tmp) / "home", third_party_plugins=False))
        try:
            for name in sorted({n for pair in PAIRS for n in pair}):
                write_audio(Path(tmp) / f"{name}.wav", AudioFrame(spk[name]["reference"], SR))
                engine.add_voice(name, [Path(tmp) / f"{name}.wav"])
            for target, source in PAIRS:
                held = np.mean([judges.encoder.embed(c) for c in spk[target]["held_out"]], axis=0)
                per: dict[str, list[tuple[float, float, float]]] = {k: [] for k in names}
                clips = list(zip(spk[source]["inputs"], spk[target]["inputs"]))[:n_clips]
                for (clip, text), (same_text, _) in clips:
                    out = engine.convert(AudioFrame(clip, SR), target)
                    y = resample(out.samples, out.sample_rate, SR).astype(np.float64)
                    x, t = clip.astype(np.float64), same_text.astype(np.float64)
                    ref = spk[target]["reference"].astype(np.float64)
                    outs = {"base": y, "oracle": oracle(y, x, t, 1.0), "oracle50": oracle(y, x, t, 0.5),
                            "knn50": knn(y, x, ref, 0.5), "target": t}
                    sim_in = cosine(judges.encoder.embed(clip), held)
                    for k, o in outs.items():
                        o32 = o.astype(np.float32)
                        per[k].append((cosine(judges.encoder.embed(o32), held) - sim_in,
                                       wer(text, judges.transcribe(o32)), judges.dnsmos(o32)))
                line = f"{target + ' <- ' + source:18}"
                for k in names:
                    med = tuple(statistics.median(v[i] for v in per[k]) for i in range(3))
                    rows[k].append(med)  # type: ignore[arg-type]
                    line += f"{med[0]:>+10.3f}{med[1]:>6.2f}{med[2]:>6.2f}"
                print(line, flush=True)
        finally:
            engine.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=2, help="input clips per pair (median over them)")
    a = p.parse_args()
    print(machine_line())
    rows = run(a.clips)
    print("over rows: gain median (min, rows >= +0.10) | WER median (max) | DNSMOS median (min, rows >= 3.0)")
    for k, got in rows.items():
        g, w, d = (np.array([r[i] for r in got]) for i in range(3))
        print(f"  {k:9} {np.median(g):+.3f} ({g.min():+.3f}, {(g >= 0.10).sum()}/{len(g)}) | "
              f"{np.median(w):.2f} ({w.max():.2f}) | {np.median(d):.2f} ({d.min():.2f}, {(d >= 3.0).sum()}/{len(d)})")


if __name__ == "__main__":
    main()
