"""Voice store benchmark: many voices over a few shared bases, disk, switch times, resident memory.

Builds ``--voices`` voices over ``--bases`` random full-size GPT-SoVITS v2 bases (official ``.pth`` /
``.ckpt`` files imported through the safe loaders into ``<home>/blobs``); every ``--delta-every``-th
voice gets a fine-tune stored as a ``replace`` delta on its base (two tensors changed). Then prints:

* disk used by the store vs one-file-per-voice (each voice with its own s1 + s2 file, today's layout),
  and that every delta voice composes to exactly its fine-tuned weights;
* warm and cold switch times (median and p95 over ``--switches`` random switches), through the engine's
  own path: ``Engine.pipeline("tts", voice)`` (the ``ResidentCache`` of pipelines under the budget; a
  cold switch builds every stage of the ``tts`` preset for the voice from its blobs) then
  ``Pipeline.prompt_ready()`` (the reference's prompt features and timbre, read from the voice's
  feature cache). A voice's first switch computes and caches those features (HuBERT + RVQ on its
  reference), so it is reported apart from the cold switches that read them; warm = already resident.
  ``--drop-caches`` (root) empties the page cache before every cold switch, so "from disk" is real;
* resident memory against ``--budget-mb`` over the switches (LRU eviction).

``--tiny`` uses small random models shaped like the reference fixtures (``--reference-dir``, default
``$ANCHORVOICE_GSV_REFERENCE``) and a small HuBERT (a smoke run). Timings are shared-machine figures:
other work on the same cores moves them; the CPU model, its ISA flags and the load average are printed
with them.
* speak throughput through the control API with requests for 3 voices interleaved (``--api-requests``):
  embedded-default voices (espeak-ng + the DSP converter, so the figure is about the store and the server,
  not a neural model on a loaded CPU), against the same requests all for one voice, timed in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.store.blobs import read_blob, replace_delta
from anchorvoice.engine.store.resident import MB, StoreConfig
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_sovits
from anchorvoice.plugins.gsv.model_import import import_gsv_model
from bench.machine import machine_line

TINY_HUBERT = {"conv_dim": [8] * 7, "hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 4,
               "intermediate_size": 32, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 16}
"""A small HuBERT whose width (768) matches the SoVITS ``ssl_proj``."""


def write_tiny(folder: Path, seed: int, reference_dir: Path) -> tuple[Path, Path]:
    """Random s1/s2 files with the reference fixtures' (small) configs, in the official layouts."""
    from anchorvoice.plugins.gsv.checkpoint_writer import write_gpt, write_sovits
    from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn
    from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder

    s2, s1 = load_sovits(reference_dir / "s2_v2_small.pth"), load_gpt(reference_dir / "s1_v2_small.ckpt")
    torch.manual_seed(seed)
    sovits = SynthesizerTrn(SovitsConfig.from_checkpoint_config(s2.config, s2.version))
    gpt = Text2SemanticDecoder(T2SConfig.from_checkpoint_config(s1.config))
    return (write_gpt(folder / f"s1_{seed}.ckpt", gpt, s1.config, "tiny"),
            write_sovits(folder / f"s2_{seed}.pth", sovits, s2.config, "tiny"))


def write_full(folder: Path, seed: int) -> tuple[Path, Path]:
    from bench.fullsize import write_gpt, write_sovits

    return write_gpt(folder / f"s1_{seed}.ckpt", seed), write_sovits(folder / f"s2_{seed}.pth", seed)


def drop_page_cache() -> None:
    """Write back dirty pages, then drop the page cache, dentries and inodes (needs root)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


async def _speak_all(engine: object, voices: list[str], n: int) -> float:
    """Seconds from the first ``speak`` sent to the last ``speaking.stopped``, requests cycling ``voices``."""
    import json

    from websockets.asyncio.client import connect

    from anchorvoice.engine.server.app import ControlServer, ServerConfig
    from anchorvoice.engine.server.methods import Controller, ControllerConfig
    from anchorvoice.plugins.audio_io import NullAudioSink

    ctl = Controller(engine, NullAudioSink(), ControllerConfig(pace=False))  # type: ignore[arg-type]
    server = ControlServer(ctl, ServerConfig(port=0), token="bench-token-0123456789")
    await server.start()
    try:
        async with connect(f"ws://127.0.0.1:{server.port}/?token=bench-token-0123456789") as ws:
            await ws.recv()  # hello
            await ws.send(json.dumps({"id": 0, "method": "subscribe", "params": {"events": ["speaking.stopped"]}}))
            t0 = time.perf_counter()
            for i in range(n):
                await ws.send(json.dumps({"id": i + 1, "method": "speak", "params": {
                    "text": f"Thanks for the follow, number {i}.", "voice": voices[i % len(voices)]}}))
            stopped = 0
            while stopped < n:
                msg = json.loads(await ws.recv())
                stopped += msg.get("event") == "speaking.stopped"
            return time.perf_counter() - t0
    finally:
        await server.close()


def api_throughput(work: Path, n: int) -> None:
    import asyncio

    from anchorvoice.engine.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(home=work / "api-home", third_party_plugins=False))
    names = []
    for i, f0 in enumerate((110.0, 180.0, 250.0)):
        clip = work / f"api{i}.wav"
        sf.write(str(clip), speech_like_signal(22050, 3.0, f0=f0).samples, 22050)
        names.append(engine.add_voice(f"api{i}", [clip]).name)
    try:
        asyncio.run(_speak_all(engine, names, 3))  # warm-up: builds the three pipelines
        runs = {"3 voices interleaved": names, "1 voice": names[:1]}
        times = {k: statistics.median(asyncio.run(_speak_all(engine, v, n)) for _ in range(3)) for k, v in runs.items()}
    finally:
        engine.close()
    base = times["1 voice"]
    for k, t in times.items():
        print(f"control API, {n} speak requests, {k}: {n / t:.2f} requests/s (median of 3; {base / t:.2f}x "
              f"the one-voice rate)", flush=True)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", type=int, default=300)
    ap.add_argument("--bases", type=int, default=6)
    ap.add_argument("--delta-every", type=int, default=5)
    ap.add_argument("--switches", type=int, default=200)
    ap.add_argument("--budget-mb", type=float, default=0.0, help="resident budget (default: three voices)")
    ap.add_argument("--tiny", action="store_true", help="small random models (smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--api-requests", type=int, default=12, help="speak requests per API run (0: skip)")
    ap.add_argument("--drop-caches", action="store_true",
                    help="empty the page cache before every cold switch (root only), so cold = from disk")
    ap.add_argument("--reference-dir", type=Path, default=None,
                    help="GPT-SoVITS reference fixtures for --tiny (default: $ANCHORVOICE_GSV_REFERENCE)")
    args = ap.parse_args()
    if args.tiny and args.voices:
        args.reference_dir = args.reference_dir or Path(os.environ.get("ANCHORVOICE_GSV_REFERENCE", ""))
        if not (args.reference_dir / "s2_v2_small.pth").is_file():
            ap.error("--tiny builds its models from the reference fixtures' configs: give --reference-dir DIR "
                     "(or set ANCHORVOICE_GSV_REFERENCE) with s1_v2_small.ckpt and s2_v2_small.pth")
    if args.drop_caches and os.geteuid() != 0:
        ap.error("--drop-caches writes /proc/sys/vm/drop_caches, which needs root; run as root or leave it out "
                 "(cold switches then read the blobs from the page cache)")
    torch.set_num_threads(args.threads)
    print(f"{machine_line(args.threads)} (shared machine: timings move with other load)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="av-store-bench-"))
    try:
        if args.voices:
            run(args, work)
        if args.api_requests:
            api_throughput(work, args.api_requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    from anchorvoice.engine.engine import Engine, EngineConfig
    from bench.fullsize import write_hubert

    print(f"voice store: {args.voices} voices over {args.bases} {'tiny' if args.tiny else 'full-size'} bases",
          flush=True)
    files = [write_tiny(work, seed, args.reference_dir) if args.tiny else write_full(work, seed)
             for seed in range(args.bases)]
    hubert = write_hubert(work / "hubert", 0, TINY_HUBERT if args.tiny else None)
    home = work / "home"
    lib = VoiceLibrary(home)
    clip = work / "ref.wav"
    sf.write(str(clip), speech_like_signal(32000, 4.0, f0=160.0).samples, 32000)
    naive = 0
    t0 = time.perf_counter()
    deltas: dict[str, dict[str, torch.Tensor]] = {}
    stored: dict[int, dict[str, Path]] = {}
    shared_hubert: Path | None = None
    for i in range(args.voices):
        gpt, sovits = files[i % args.bases]
        naive += gpt.stat().st_size + sovits.stat().st_size
        name = f"voice{i:03d}"
        text = "Hello there, how are you today?"
        if i < args.bases:  # the first voice of each base imports it; the others name its blobs (stored once)
            v = lib.add(name, [clip], ref_text=text, importer=import_gsv_model,
                        models={"gpt": gpt, "sovits": sovits, "hubert": shared_hubert or hubert})
            stored[i] = v.models
            shared_hubert = v.models["hubert"]
        else:
            v = lib.add(name, [clip], ref_text=text, models=dict(stored[i % args.bases]))
        if args.delta_every and i % args.delta_every == 0:
            base, _ = read_blob(v.models["sovits"])
            tuned = dict(base)
            for k in sorted(base)[:2]:
                tuned[k] = base[k] + 0.01 * (i + 1)
            sha = lib.blobs.put_delta(v.blobs["sovits"], replace_delta(base, tuned))
            lib.add(name, [clip], ref_text=text, overwrite=True,
                    models={**v.models, "sovits": lib.blobs.path(sha)})
            deltas[name] = {k: tuned[k] for k in sorted(base)[:2]}
    build_s = time.perf_counter() - t0
    store = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    exact = all(all(torch.equal(load_sovits(lib.get(n).models["sovits"]).weights[k], t) for k, t in want.items())
                for n, want in deltas.items())
    print(f"built in {build_s:.1f} s; disk: store {store / 1e9:.3f} GB (one shared HuBERT included) vs one "
          f"file per voice {naive / 1e9:.2f} GB of s1 + s2 ({naive / max(store, 1):.0f}x less); "
          f"{len(deltas)} fine-tuned voices compose exactly: {exact}", flush=True)

    # The engine's own switch path; its budget: three voices' pipelines unless --budget-mb is given.
    probe = Engine(EngineConfig(home=home, third_party_plugins=False))
    probe.pipeline("tts", "voice000").prompt_ready()
    one = probe.resident().host
    floor = max(probe.voice_needs().values())  # what the engine's start-up check asks for (conservative)
    probe.close()
    budget = args.budget_mb or max(3 * one, floor) / MB + 1
    print(f"one voice resident: {one / MB:.0f} MiB measured; the start-up check's floor (all of a voice's model "
          f"files as float32): {floor / MB:.0f} MiB", flush=True)
    engine = Engine(EngineConfig(home=home, third_party_plugins=False, store=StoreConfig(max_resident_mb=budget)))
    if args.drop_caches:
        print("cold switches below start with an empty page cache (3 written to /proc/sys/vm/drop_caches "
              "before each): the blobs are read from disk", flush=True)
    else:
        print("cold switches below read the blobs through the page cache (warm; --drop-caches as root for "
              "disk reads)", flush=True)
    rng = random.Random(0)
    names = lib.names()
    warm: list[float] = []
    cold: list[float] = []
    first: list[float] = []
    cold_cpu: list[float] = []  # CPU seconds of this process (all its threads): less moved by other load
    seen = {"voice000"}  # the probe computed its features
    peak = 0
    over_time: list[int] = []  # resident host bytes after each switch
    try:
        for _ in range(args.switches):
            n = rng.choice(names[: max(4, len(names) // 10)] if rng.random() < 0.6 else names)  # some are hot
            hit = engine.loaded("tts", n)
            if not hit and args.drop_caches:
                drop_page_cache()
            t, c = time.perf_counter(), time.process_time()
            engine.pipeline("tts", n).prompt_ready()
            (warm if hit else cold if n in seen else first).append(time.perf_counter() - t)
            if not hit and n in seen:
                cold_cpu.append(time.process_time() - c)
            seen.add(n)
            now = engine.resident().host
            peak = max(peak, now)
            over_time.append(now)
        evictions = engine._pipelines.evictions  # bench-only look inside: how often the budget unloaded
    finally:
        engine.close()
    print(f"switches: {args.switches} ({len(warm)} warm, {len(cold)} cold with cached features, {len(first)} "
          f"first-ever); one voice {one / MB:.0f} MiB loaded, budget {budget:.0f} MiB, peak resident "
          f"{peak / MB:.0f} MiB ({'within' if peak <= budget * MB else 'OVER'} budget), {evictions} evictions",
          flush=True)
    step = max(1, len(over_time) // 20)
    print(f"resident MiB, every {step} switch(es): " + " ".join(f"{b / MB:.0f}" for b in over_time[::step]),
          flush=True)
    print(f"warm switch: median {statistics.median(warm) * 1e3 if warm else float('nan'):.3f} ms, "
          f"p95 {pct(warm, 95) * 1e3:.3f} ms", flush=True)
    print(f"cold switch (features cached): median {statistics.median(cold) if cold else float('nan'):.3f} s, "
          f"p95 {pct(cold, 95):.3f} s (CPU time of this process: median "
          f"{statistics.median(cold_cpu) if cold_cpu else float('nan'):.3f} s)", flush=True)
    print(f"first switch to a voice (features computed and cached): median "
          f"{statistics.median(first) if first else float('nan'):.3f} s, p95 {pct(first, 95):.3f} s", flush=True)

if __name__ == "__main__":
    main()
