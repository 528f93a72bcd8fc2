"""Voice store benchmark: many voices over a few shared bases, disk, switch times, resident memory.

Builds ``--voices`` voices over ``--bases`` random full-size GPT-SoVITS v2 bases (official ``.pth`` /
``.ckpt`` files imported through the safe loaders into ``<home>/blobs``); every ``--delta-every``-th
voice gets a fine-tune stored as a ``replace`` delta on its base (two tensors changed). Then prints:

* disk used by the store vs one-file-per-voice (each voice with its own s1 + s2 file, today's layout),
  and that every delta voice composes to exactly its fine-tuned weights;
* warm and cold switch times (median and p95 over ``--switches`` random switches): cold = read the
  blobs, build the SoVITS and GPT models, read the cached prompt features; warm = already resident;
* resident memory against ``--budget-mb`` over the switches (LRU eviction).

``--tiny`` uses small random models (a smoke run). Timings are shared-machine figures: other work on
the same cores moves them; the CPU model, its ISA flags and the load average are printed with them.
* speak throughput through the control API with requests for 3 voices interleaved (``--api-requests``):
  embedded-default voices (espeak-ng + the DSP converter, so the figure is about the store and the server,
  not a neural model on a loaded CPU), against the same requests all for one voice, timed in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
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
from anchorvoice.engine.store.resident import MB, ResidentCache, StoreConfig
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_sovits
from anchorvoice.plugins.gsv.model_import import import_gsv_model


def cpu_line() -> str:
    model, flags = platform.processor() or "?", ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        have = set(next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")))
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile", "fma") if f in have)
    except (OSError, StopIteration):
        pass
    return f"{model} [{flags}], {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def write_tiny(folder: Path, seed: int) -> tuple[Path, Path]:
    """Small official-layout s1/s2 files (the test fixtures' shapes are not needed: only the store is timed)."""
    g = torch.Generator().manual_seed(seed)
    s2 = {"enc_p.text_embedding.weight": torch.randn(732, 64, generator=g).half(),
          **{f"dec.l{i}.weight": torch.randn(256, 256, generator=g).half() for i in range(8)}}
    s1 = {f"model.{k}": v for k, v in {"ar_text_embedding.word_embeddings.weight": torch.randn(732, 64, generator=g),
                                       **{f"h.{i}.w": torch.randn(256, 256, generator=g) for i in range(8)}}.items()}
    torch.save({"weight": s2, "config": {"model": {}, "version": "v2"}, "info": "tiny"}, folder / f"s2_{seed}.pth")
    torch.save({"weight": {k: v.half() for k, v in s1.items()}, "config": {"model": {"phoneme_vocab_size": 732}},
                "info": "tiny"}, folder / f"s1_{seed}.ckpt")
    return folder / f"s1_{seed}.ckpt", folder / f"s2_{seed}.pth"


def write_full(folder: Path, seed: int) -> tuple[Path, Path]:
    from bench.fullsize import write_gpt, write_sovits

    return write_gpt(folder / f"s1_{seed}.ckpt", seed), write_sovits(folder / f"s2_{seed}.pth", seed)


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_line()}; {args.threads} threads (shared machine: timings move with other load)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="av-store-bench-"))
    try:
        if args.voices:
            run(args, work)
        if args.api_requests:
            api_throughput(work, args.api_requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    print(f"voice store: {args.voices} voices over {args.bases} {'tiny' if args.tiny else 'full-size'} bases",
          flush=True)
    files = [(write_tiny if args.tiny else write_full)(work, seed) for seed in range(args.bases)]
    lib = VoiceLibrary(work / "home")
    clip = work / "ref.wav"
    sf.write(str(clip), speech_like_signal(32000, 4.0, f0=160.0).samples, 32000)
    naive = 0
    t0 = time.perf_counter()
    deltas: dict[str, dict[str, torch.Tensor]] = {}
    stored: dict[int, dict[str, Path]] = {}
    for i in range(args.voices):
        gpt, sovits = files[i % args.bases]
        naive += gpt.stat().st_size + sovits.stat().st_size
        name = f"voice{i:03d}"
        if i < args.bases:  # the first voice of each base imports it; the others name its blobs (stored once)
            v = lib.add(name, [clip], ref_text="hello", models={"gpt": gpt, "sovits": sovits},
                        importer=import_gsv_model)
            stored[i] = v.models
        else:
            v = lib.add(name, [clip], ref_text="hello", models=dict(stored[i % args.bases]))
        if args.delta_every and i % args.delta_every == 0:
            base, _ = read_blob(v.models["sovits"])
            tuned = dict(base)
            for k in sorted(base)[:2]:
                tuned[k] = base[k] + 0.01 * (i + 1)
            sha = lib.blobs.put_delta(v.blobs["sovits"], replace_delta(base, tuned))
            lib.add(name, [clip], ref_text="hello", models={"gpt": v.models["gpt"], "sovits": lib.blobs.path(sha)},
                    overwrite=True)
            deltas[name] = {k: tuned[k] for k in sorted(base)[:2]}
    build_s = time.perf_counter() - t0
    store = sum(p.stat().st_size for p in (work / "home").rglob("*") if p.is_file())
    exact = all(all(torch.equal(load_sovits(lib.get(n).models["sovits"]).weights[k], t) for k, t in want.items())
                for n, want in deltas.items())
    print(f"built in {build_s:.1f} s; disk: store {store / 1e9:.3f} GB vs one file per voice {naive / 1e9:.2f} GB "
          f"({naive / max(store, 1):.0f}x less); {len(deltas)} fine-tuned voices compose exactly: {exact}", flush=True)

    def build(name: str) -> dict[str, object]:
        v = lib.get(name)
        loaded: dict[str, object] = {"sovits": load_sovits(v.models["sovits"]), "gpt": load_gpt(v.models["gpt"])}
        if not args.tiny:
            from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
            from anchorvoice.plugins.gsv.t2s_model import load_t2s

            loaded = {"sovits": SynthesizerTrn.from_checkpoint(loaded["sovits"]),  # type: ignore[arg-type]
                      "gpt": load_t2s(v.models["gpt"])}
        feats = v.features().get_or_compute("bench-prompt", lambda: {"tokens": np.arange(100)})
        loaded["prompt"] = feats
        return loaded

    probe = build("voice000")
    from anchorvoice.engine.store.resident import footprint

    one = footprint(probe).host
    budget = args.budget_mb or 3 * one / MB + 1
    cache: ResidentCache[dict[str, object]] = ResidentCache(StoreConfig(max_resident_mb=budget))
    rng = random.Random(0)
    names = lib.names()
    warm: list[float] = []
    cold: list[float] = []
    peak = 0
    for _ in range(args.switches):
        n = rng.choice(names[: max(4, len(names) // 10)] if rng.random() < 0.6 else names)  # some voices are hot
        hit = n in cache.keys()
        t = time.perf_counter()
        cache.get_or_build(n, lambda n=n: build(n))
        (warm if hit else cold).append(time.perf_counter() - t)
        peak = max(peak, cache.resident().host)
    print(f"switches: {args.switches} ({len(warm)} warm, {len(cold)} cold); one voice {one / MB:.0f} MiB loaded, "
          f"budget {budget:.0f} MiB, peak resident {peak / MB:.0f} MiB ({'within' if peak <= budget * MB else 'OVER'} "
          f"budget), {cache.evictions} evictions", flush=True)
    print(f"warm switch: median {statistics.median(warm) * 1e3 if warm else float('nan'):.3f} ms, "
          f"p95 {pct(warm, 95) * 1e3:.3f} ms", flush=True)
    print(f"cold switch: median {statistics.median(cold) if cold else float('nan'):.3f} s, "
          f"p95 {pct(cold, 95):.3f} s", flush=True)


if __name__ == "__main__":
    main()
