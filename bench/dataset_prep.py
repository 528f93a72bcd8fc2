"""Training-set preparation time: ``anchorvoice dataset make`` against the official prepare scripts.

Usage::

    PYTHONPATH=/tmp/oracle-pkgs python bench/dataset_prep.py [--minutes 10] [--repeats 3] [--threads 2]

Input: Debian's Asterisk English prompts (``/usr/share/asterisk/sounds/en/*.g722``, real speech) in
name order, with their published transcripts (``core-sounds-en.txt.gz``), until ``--minutes`` of audio;
prompts whose transcript is not speech (``[beep]``) or that our clip checks would reject (under 1 s,
over 30 s) are left out. Models: full-size random weights (``bench/fullsize.py``): chinese-hubert-base
sizes for HuBERT (94.4 M parameters, written as a HuggingFace folder both sides load) and the official
v2 ``s2.json`` sizes for SoVITS (its file written as a plain zip, which the official 3-get-semantic's
``torch.load`` needs, and padded into the official v2 file-size band if needed: that script picks the
model version from the file size).

Each repeat times, alternately, in fresh folders and fresh processes, ``OMP_NUM_THREADS=--threads``:

* ours: one process running ``make_dataset`` (what ``anchorvoice dataset make NAME --audio DIR
  --transcripts X.list --hubert DIR --sovits FILE`` runs); per phase from its progress events
  (``slice`` includes loading the models), end to end = the process's wall time;
* official, as the webui launches them, one process each (``tests/fixtures/make_dataset_oracle.py``
  ``--child`` mode: the unmodified script with the stubs that script documents): ``tools/slice_audio.py``
  on the same recordings (timed only: it cuts long prompts at pauses, which a per-recording
  transcript cannot follow), then ``prepare_datasets/1-get-text.py``, ``2-get-hubert-wav32k.py``,
  ``3-get-semantic.py`` on OUR clips and ``.list`` (the same clips the official slicer writes for a
  recording it does not cut: see the oracle test), the part files merged as the webui merges them.

Prints the median over ``--repeats`` per step, both end-to-end figures with the ratio (goal in
issue 14: ours >= 1.5x faster), and whether the files agree (last repeat): 2-name2text and
6-name2semantic line by line, 4-cnhubert max abs difference, 5-wav32k max sample difference. The
official English g2p reads homographs with NLTK's tagger; without its data the stub tags every word
``NN`` while ours reads them by rules, so those lines may differ for that reason alone. ``--nltk-data DIR``
gives both sides the same tagger files (e.g. the stand-in ``bench/peer_drivers/standins.py tagger DIR``
writes; NLTK's real one where installed). The official English dictionary cache is built
once in the private copy of the official tree before timing, as an installed checkout has it.
``--no-official`` times ours only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.soak import machine_info  # noqa: E402

PROMPTS = Path("/usr/share/asterisk/sounds/en")
ORACLE_SCRIPT = REPO / "tests" / "fixtures" / "make_dataset_oracle.py"
SLICER_ARGS = ["-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1"]
V1_BELOW = 82978 * 1024
"""3-get-semantic.py: files below this size are v1."""
PREPROCESSOR = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                "padding_side": "right", "padding_value": 0, "return_attention_mask": False,
                "sampling_rate": 16000}
STEPS = ("slice", "text", "hubert+wav32k", "semantic")


def pick_prompts(minutes: float) -> list[tuple[Path, str]]:
    """(prompt file, transcript) in name order until ``minutes`` of speech."""
    from anchorvoice.audio_io import read_audio
    from bench.voice_quality import transcripts

    texts, out, total = transcripts(), [], 0.0
    for path in sorted(PROMPTS.glob("*.g722")):
        text = texts.get(path.stem, "")
        if not text or "[" in text or "|" in text or not any(c.isalpha() for c in text):
            continue
        seconds = read_audio(path, 16000).duration
        if not 1.0 <= seconds <= 30.0:
            continue
        out.append((path, text))
        total += seconds
        if total >= minutes * 60:
            break
    if not out:
        sys.exit(f"no prompts found in {PROMPTS}: install asterisk-core-sounds-en-g722")
    return out


def write_inputs(work: Path, prompts: list[tuple[Path, str]]) -> tuple[Path, Path]:
    audio = work / "audio"
    audio.mkdir(parents=True)
    for path, _ in prompts:
        shutil.copy(path, audio / path.name)
    listfile = work / "transcripts.list"
    listfile.write_text("".join(f"{p.name}|bench|en|{t}\n" for p, t in prompts), encoding="utf-8")
    return audio, listfile


def write_models(work: Path) -> tuple[Path, Path]:
    """Full-size HuBERT folder and a plain-zip full-size v2 s2 file in the official v2 size band."""
    import torch

    from bench.fullsize import write_hubert, write_sovits

    hubert = write_hubert(work / "hubert")
    (hubert / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR), encoding="utf-8")
    tagged = write_sovits(work / "s2_tagged.pth")
    data = bytearray(tagged.read_bytes())
    data[:2] = b"PK"  # the official version tag -> the plain zip magic (same content)
    tagged.unlink()
    s2 = work / "s2G_full.pth"
    s2.write_bytes(bytes(data))
    if s2.stat().st_size < V1_BELOW:
        box = torch.load(s2, map_location="cpu", weights_only=True)
        box["bench_pad"] = torch.zeros(V1_BELOW + (1 << 20) - s2.stat().st_size, dtype=torch.uint8)
        torch.save(box, s2)
    return hubert, s2


def run_ours(work: Path, audio: Path, listfile: Path, hubert: Path, s2: Path, threads: int) -> dict[str, Any]:
    home, out = work / "ours-home", work / "ours.json"
    shutil.rmtree(home, ignore_errors=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-ours", str(home), str(audio), str(listfile),
           str(hubert), str(s2), str(threads), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"dataset make failed:\n{proc.stderr[-4000:]}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["wall_s"] = wall
    return result


def child_ours(home: str, audio: str, listfile: str, hubert: str, s2: str, threads: str, out: str) -> None:
    import torch

    torch.set_num_threads(int(threads))
    from anchorvoice.engine.dataset.builder import MakeConfig, make_dataset
    from anchorvoice.engine.dataset.progress import ProgressEvent
    from anchorvoice.engine.plugins import PluginManager

    names = {"slice": "slice", "gsv-text": "text", "gsv-hubert": "hubert+wav32k", "gsv-semantic": "semantic"}
    last: dict[str, float] = {}

    def report(ev: ProgressEvent) -> None:
        last[names.get(ev.phase, ev.phase)] = time.perf_counter()

    plugins = PluginManager()
    plugins.load_entry_points(third_party=False)
    cfg = MakeConfig("bench", Path(audio), Path(listfile), models={"hubert": Path(hubert), "sovits": Path(s2)})
    t0 = time.perf_counter()
    info = make_dataset(Path(home), cfg, plugins, report)
    steps, prev = {}, t0
    for name, t in sorted(last.items(), key=lambda kv: kv[1]):
        steps[name], prev = t - prev, t
    Path(out).write_text(json.dumps({"steps": steps, "path": info["path"], "clips": info["clips"]}), encoding="utf-8")


def run_official(work: Path, audio: Path, ours: Path, hubert: Path, s2: Path, official: Path,
                 threads: int) -> dict[str, Any]:
    """Official slicer on the recordings, then the three prepare scripts on our clips; seconds per process."""
    exp, sliced = work / "official-exp", work / "official-sliced"
    for d in (exp, sliced):
        shutil.rmtree(d, ignore_errors=True)
    env = {**_env(threads), "OFFICIAL": str(official), "OFFICIAL_COMMIT": "-",
           "inp_text": str(ours / "bench.list"), "inp_wav_dir": str(ours / "clips"), "exp_name": "bench",
           "i_part": "0", "all_parts": "1", "_CUDA_VISIBLE_DEVICES": "", "opt_dir": str(exp), "is_half": "False",
           "version": "v2", "bert_pretrained_dir": str(work / "bert"), "cnhubert_base_dir": str(hubert),
           "pretrained_s2G": str(s2), "s2config_path": str(official / "configs" / "s2.json")}
    steps = {"slice": _child(env, official.parent / "tools" / "slice_audio.py", [str(audio), str(sliced),
                                                                                  *SLICER_ARGS], work)}
    for step, script in (("text", "1-get-text.py"), ("hubert+wav32k", "2-get-hubert-wav32k.py"),
                         ("semantic", "3-get-semantic.py")):
        steps[step] = _child(env, official / "prepare_datasets" / script, [], work)
    _merge(exp / "2-name2text-0.txt", exp / "2-name2text.txt", None)
    _merge(exp / "6-name2semantic-0.tsv", exp / "6-name2semantic.tsv", "item_name\tsemantic_audio")
    return {"steps": steps, "wall_s": sum(steps.values()), "path": str(exp)}


def _child(env: dict[str, str], script: Path, argv: list[str], cwd: Path) -> float:
    cmd = [sys.executable, str(ORACLE_SCRIPT), "--child", "script", str(script), *argv]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "Traceback" in log:
        sys.exit(f"official {script.name} failed (rc {proc.returncode}):\n{log[-4000:]}")
    return wall


def _merge(part: Path, whole: Path, header: str | None) -> None:
    lines = ([header] if header else []) + part.read_text(encoding="utf-8").strip("\n").split("\n")
    whole.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "PYTHONDONTWRITEBYTECODE": "1"}


def private_copy(official: Path, work: Path) -> Path:
    """The official folders copied into ``work`` (the English g2p writes a cache next to its code)."""
    skip = shutil.ignore_patterns("__pycache__", "pretrained_models")
    shutil.copytree(official, work / "official" / official.name, ignore=skip)
    shutil.copytree(official.parent / "tools", work / "official" / "tools", ignore=skip)
    return work / "official" / official.name


def warm_official_g2p(work: Path, official: Path, threads: int) -> None:
    """Let the official English g2p build its dictionary cache in the private copy before timing (an
    installed official checkout has built it on first use; rebuilding it each run would not be fair)."""
    warm = work / "warm_g2p.py"
    warm.write_text("from text.cleaner import clean_text\nprint(clean_text('warm up', 'en', 'v2'))\n")
    _child({**_env(threads), "OFFICIAL": str(official), "OFFICIAL_COMMIT": "-"}, warm, [], work)


def write_bert(work: Path, python: str) -> None:
    """The placeholder BERT 1-get-text.py loads (only used for Chinese): the oracle script's recipe."""
    code = (
        "import sys, transformers\n"
        "d = sys.argv[1]\n"
        "v = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', *'abcdefghijklmnopqrstuvwxyz.,!?']\n"
        "open(d + '/vocab.txt', 'w').write('\\n'.join(v) + '\\n')\n"
        "transformers.BertTokenizer(d + '/vocab.txt').save_pretrained(d)\n"
        "c = transformers.BertConfig(vocab_size=len(v), hidden_size=8, num_hidden_layers=1, num_attention_heads=1,"
        " intermediate_size=8, max_position_embeddings=64)\n"
        "transformers.BertForMaskedLM(c).save_pretrained(d)\n"
    )
    (work / "bert").mkdir(exist_ok=True)
    subprocess.run([python, "-c", code, str(work / "bert")], check=True, capture_output=True)


def compare(ours: Path, official: Path) -> dict[str, Any]:
    """How far the two folders' files agree."""
    import numpy as np
    import soundfile as sf
    import torch

    def lines(p: Path) -> list[str]:
        return p.read_text(encoding="utf-8").split("\n")

    out: dict[str, Any] = {}
    for name in ("2-name2text.txt", "6-name2semantic.tsv"):
        a, b = lines(ours / name), lines(official / name)
        out[name] = {"lines_equal": sum(x == y for x, y in zip(a, b)), "lines": max(len(a), len(b)),
                     "identical": a == b, "differ": [x.split("\t")[0] for x, y in zip(a, b) if x != y][:8]}
    diff, missing = 0.0, 0
    for f in sorted((official / "4-cnhubert").iterdir()):
        mine = ours / "4-cnhubert" / f.name
        if not mine.is_file():
            missing += 1
            continue
        a = torch.load(mine, map_location="cpu", weights_only=True).detach()
        b = torch.load(f, map_location="cpu", weights_only=True).detach()
        diff = max(diff, float((a - b).abs().max()) if a.shape == b.shape else float("inf"))
    out["4-cnhubert"] = {"max_abs_diff": diff, "missing": missing}
    wav = 0
    for f in sorted((official / "5-wav32k").iterdir()):
        a, _ = sf.read(ours / "5-wav32k" / f.name, dtype="int16")
        b, _ = sf.read(f, dtype="int16")
        wav = max(wav, int(np.abs(a.astype(np.int32) - b).max()) if a.shape == b.shape else 1 << 16)
    out["5-wav32k"] = {"max_sample_diff": wav}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of speech (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, median reported (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads (default %(default)s)")
    ap.add_argument("--official", type=Path, default=Path("/work/official/GPT_SoVITS"),
                    help="official GPT_SoVITS folder (default %(default)s)")
    ap.add_argument("--no-official", action="store_true", help="time ours only")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    ap.add_argument("--nltk-data", type=Path, default=None,
                    help="nltk_data folder with taggers/averaged_perceptron_tagger_eng: both sides tag homographs "
                         "with it (NLTK on the official side, our reader of its files on ours)")
    a = ap.parse_args(argv)
    if a.nltk_data is not None:
        os.environ["NLTK_DATA"] = str(a.nltk_data.resolve())  # inherited by both sides' processes
    from anchorvoice.plugins.text_en.pos_tagger import find_tagger

    print(f"homograph tagger: {find_tagger('auto') or 'none found: ours by rules, official every word NN'}", flush=True)
    print(f"machine: {json.dumps(machine_info())}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="dataset-prep-"))
    try:
        return _bench(a, work)
    finally:
        if a.keep:
            print(f"working folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(a: argparse.Namespace, work: Path) -> int:
    prompts = pick_prompts(a.minutes)
    audio, listfile = write_inputs(work, prompts)
    hubert, s2 = write_models(work)
    official = a.official.resolve()
    if not a.no_official:
        write_bert(work, sys.executable)
        official = private_copy(official, work)
        warm_official_g2p(work, official, a.threads)
    print(f"input: {len(prompts)} Asterisk prompts, ~{a.minutes:g} min; full-size HuBERT + s2 (random); "
          f"{a.threads} threads; {a.repeats} repeats", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "official": []}
    for _ in range(a.repeats):
        runs["ours"].append(run_ours(work, audio, listfile, hubert, s2, a.threads))
        if not a.no_official:
            ours_dir = Path(runs["ours"][-1]["path"])
            runs["official"].append(run_official(work, audio, ours_dir, hubert, s2, official, a.threads))
    report: dict[str, Any] = {"clips": runs["ours"][-1]["clips"]}
    print(f"{'step':<16}{'ours s':>10}{'official s':>12}{'ratio':>8}")
    for step in STEPS:
        o = statistics.median(r["steps"].get(step, 0.0) for r in runs["ours"])
        f = statistics.median(r["steps"][step] for r in runs["official"]) if runs["official"] else float("nan")
        report[step] = {"ours_s": o, "official_s": f}
        print(f"{step:<16}{o:>10.2f}{f:>12.2f}{f / o if o else float('nan'):>8.2f}")
    o_wall = statistics.median(r["wall_s"] for r in runs["ours"])
    f_wall = statistics.median(r["wall_s"] for r in runs["official"]) if runs["official"] else float("nan")
    ratio = f_wall / o_wall
    print(f"{'end to end':<16}{o_wall:>10.2f}{f_wall:>12.2f}{ratio:>8.2f}   (processes' wall time; goal >= 1.5)")
    report["end_to_end"] = {"ours_s": o_wall, "official_s": f_wall, "ratio": ratio}
    if runs["official"]:
        agree = compare(Path(runs["ours"][-1]["path"]), Path(runs["official"][-1]["path"]))
        report["files"] = agree
        print(f"files: {json.dumps(agree)}")
    print(f"result: {json.dumps(report)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ours":
        child_ours(*sys.argv[2:9])
        sys.exit(0)
    sys.exit(main())
