"""SoVITS v2 decode speed on CPU: full-size random weights, the BASELINE.md workload.

Usage: ``.venv/bin/python bench/sovits_rtf.py [--repeats 5] [--threads 2] [--official DIR] [--json]``

Workload (gsv_reference/BASELINE.md, "SoVITS v2 decode"): a generator built from the official
``configs/s2.json`` sizes (51.3 M parameters, HiFi-GAN decoder 14.7 M) with random weights, 250
semantic codes (10 s), 120 phones, a 5 s reference spectrogram, noise_scale 0.5, ``torch`` on 2
threads, float32, inference mode. Each figure is the median (and minimum) of ``--repeats`` runs after
one warm-up; wall and CPU seconds are both printed because this machine is shared (the CPU figure
counts only this process's work, the wall figure also time spent waiting for a core).

Compared:

* ``anchorvoice``: :class:`anchorvoice.plugins.gsv.sovits.SynthesizerTrn` as shipped (weight norm folded at
  load, decoder convs on the channels-last layout, shared activations, in-place adds);
* ``ncw reference``: the same weights with the decoder on plain conv1d (NCW) in the official order
  of operations, i.e. what the official Generator computes, measured here in the same run;
* the official figure 2.47 s from BASELINE.md (measured on another machine: a 2-core AMD EPYC);
* the decoder streamed through :class:`anchorvoice.plugins.gsv.streaming_decode.ChunkedDecoder` (total time and
  time to the first audio chunk);
* the HiFi-GAN generator alone with and without the block-DFT residual blocks
  (:mod:`anchorvoice.plugins.gsv.fft_conv`, ``Generator.block_dft``), timed alternately in one loop;
* with ``--official DIR`` (a GPT-SoVITS checkout's ``GPT_SoVITS`` folder, with ``module/`` and
  ``text/symbols*.py``): the official ``SynthesizerTrn.decode`` and its ``dec`` on the same weights
  (weight-norm pairs rebuilt from ours), timed alternately with ours in one loop. Its training-only
  imports (tqdm, einops, f5_tts) are stubbed when missing; the official decode draws its own noise.

The output check injects the same noise into both and prints max |difference| of the audio.

On a shared machine, every parallel region of a 2-thread run waits until both threads hold a core:
the prior (hundreds of small ops) then measured 2-11 s at 2 threads against 0.6 s at 1 thread with
a load average of ~5. Compare figures from the same run, and use ``--threads 1`` for a comparison
that contention distorts least.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: bench.* and the packages come from the checkout

from bench.machine import machine_line  # noqa: E402
from bench.metrics import si_snr_db  # noqa: E402
from bench.timing import roomy_onednn_cache, time_alternately  # noqa: E402

OFFICIAL_DECODE_S = 2.47  # BASELINE.md: official v2 decode, 250 codes, 120 phones, 5 s ref, 2 threads
OFFICIAL_DEC_S = 2.40  # BASELINE.md: of which the HiFi-GAN decoder


def _time(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    fn()  # warm-up (allocator, oneDNN primitive cache)
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {
        "median_s": statistics.median(wall),
        "min_s": min(wall),
        "cpu_median_s": statistics.median(cpu),
    }


def _rearrange(x: Any, pattern: str) -> Any:
    """einops.rearrange for the pure axis permutations the official inference path uses ("b d n -> b n d")."""
    src, dst = (side.split() for side in pattern.split("->"))
    if sorted(src) != sorted(dst) or len(src) != x.dim():
        raise NotImplementedError(f"einops stub: only axis permutations, got {pattern!r}")
    return x.permute(*[src.index(a) for a in dst])


def official_model(folder: Path, ours: Any) -> Any:
    """The official ``SynthesizerTrn`` from a checkout, built as its TTS loader does, with our weights."""

    from anchorvoice.plugins.gsv.sovits import official_v2_config
    from bench.fullsize import _weight_norm_pairs
    from bench.official_stubs import stub_module

    def _unused(*a: Any, **k: Any) -> Any:
        raise NotImplementedError("training-only stub")

    stub_module("tqdm", tqdm=lambda it, *a, **k: it)
    stub_module("einops", rearrange=_rearrange, repeat=_unused)
    stub_module("f5_tts")
    stub_module("f5_tts.model", DiT=_unused)
    if not (folder / "module" / "models.py").is_file():
        raise FileNotFoundError(f"{folder}/module/models.py not found: pass the checkout's GPT_SoVITS folder")
    sys.path.insert(0, str(folder))
    from module.models import SynthesizerTrn as Official  # type: ignore[import-not-found]

    cfg = official_v2_config()
    off = Official(cfg["data"]["filter_length"] // 2 + 1, 20480 // cfg["data"]["hop_length"], n_speakers=300,
                   version="v2", **cfg["model"])  # fmt: skip
    del off.enc_q
    sd = _weight_norm_pairs(ours, ours.state_dict())
    missing, unexpected = off.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"official model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return off.eval()


def audio_agreement(exact: Any, low: Any) -> dict[str, float]:
    """SI-SNR (dB) and log-mel L1 (80 mels, 32 kHz, n_fft 2048, hop 640: the SoVITS training mel) of
    ``low`` against ``exact`` (1-D float tensors)."""

    from anchorvoice.plugins.gsv.training.mel import magnitude, mel_filterbank, spec_to_mel

    si_snr = si_snr_db(exact, low)
    basis = mel_filterbank(32000, 2048, 80)
    mels = [spec_to_mel(magnitude(x[None], 2048, 640, 2048), basis) for x in (exact, low)]
    return {"si_snr_db": round(float(si_snr), 2), "log_mel_l1": round(float((mels[0] - mels[1]).abs().mean()), 5),
            "max_abs_diff": float((exact - low).abs().max())}


def run(repeats: int, threads: int, official: Path | None = None) -> dict[str, Any]:
    import torch

    from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn, official_v2_config
    from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram

    torch.set_num_threads(threads)
    roomy_onednn_cache()  # the variants (ours, NCW, chunked, block-DFT, bf16, official) each have their own kernels
    torch.manual_seed(0)
    model = SynthesizerTrn(SovitsConfig.from_checkpoint_config(official_v2_config())).eval().requires_grad_(False)
    with torch.no_grad():  # a usable random codebook (the default buffer is zeros)
        model.quantizer.vq.layers[0]._codebook.embed.normal_(0, 0.6)
    n_params = sum(p.numel() for p in model.parameters())
    n_dec = sum(p.numel() for p in model.dec.parameters())

    seconds = 10.0
    codes = torch.randint(0, 1024, (1, 1, 250))
    phones = torch.randint(0, 732, (1, 120))
    t = torch.arange(5 * 32000) / 32000.0
    ref_wav = 0.3 * torch.sin(2 * torch.pi * 150 * t) + 0.01 * torch.randn(t.shape)
    refer = linear_spectrogram(ref_wav)  # (1, 1025, 250): 5 s
    noise = torch.randn(1, 192, 500)

    def decode() -> torch.Tensor:
        with torch.inference_mode():
            return model.decode(codes, phones, [refer], noise_scale=0.5, noise=noise)

    with torch.inference_mode():
        tr = model.infer_latent(codes, phones, [refer], noise_scale=0.5, noise=noise)
    zin, ge = tr.z * tr.y_mask, tr.ge

    def part_ref() -> None:
        with torch.inference_mode():
            model.reference_ge(refer)

    def part_prior() -> None:
        with torch.inference_mode():
            model.infer_latent(codes, phones, ge=ge, noise_scale=0.5, noise=noise)

    def part_dec() -> None:
        with torch.inference_mode():
            model.dec(zin, g=ge)

    res: dict[str, Any] = {"threads": threads, "repeats": repeats}
    res.update(params_m=n_params / 1e6, dec_params_m=n_dec / 1e6)
    model.dec.channels_last = True
    ours = decode()
    res["anchorvoice"] = _time(decode, repeats)
    res["anchorvoice_parts"] = {
        "ref_enc": _time(part_ref, repeats),
        "enc_p+flow": _time(part_prior, repeats),
        "dec": _time(part_dec, repeats),
    }
    from anchorvoice.plugins.gsv.streaming_decode import ChunkedDecoder

    def chunked() -> float:
        """Stream the 10 s latent through the chunked decoder; returns seconds to the first audio."""
        cd = ChunkedDecoder(model.dec, ge)
        t0, first = time.perf_counter(), 0.0
        for i in range(0, zin.shape[2], 10):
            out = cd.push(zin[0, :, i : i + 10], final=i + 10 >= zin.shape[2])
            if len(out) and not first:
                first = time.perf_counter() - t0
        return first

    res["chunked_dec"] = _time(chunked, repeats)
    res["first_chunk_s"] = statistics.median(chunked() for _ in range(3))

    from anchorvoice.plugins.gsv.hifigan import BlockDFTRule

    rule = BlockDFTRule()  # opt-in in the product (memory); compared here with the direct path

    def with_rule(r: Any, work: Callable[[], Any]) -> Callable[[], None]:
        def f() -> None:
            model.dec.block_dft = r
            work()

        return f

    res["dec_block_dft"] = time_alternately(
        {"with": with_rule(rule, part_dec), "without": with_rule(None, part_dec)}, repeats
    )
    res["chunked_block_dft"] = time_alternately(
        {"with": with_rule(rule, chunked), "without": with_rule(None, chunked)}, repeats
    )
    model.dec.block_dft = None
    with torch.inference_mode():
        direct_out = model.dec(zin, g=ge)
    model.dec.block_dft = rule
    with torch.inference_mode():
        res["max_abs_diff_dft_vs_direct"] = float((model.dec(zin, g=ge) - direct_out).abs().max())
    res["block_dft_spectra_mb"] = model.dec.block_dft_bytes() / 2**20
    model.dec.block_dft = None

    def in_bf16(work: Callable[[], Any]) -> Callable[[], None]:
        def f() -> None:
            model.dec.use_precision("bfloat16")
            try:
                work()
            finally:
                model.dec.use_precision("float32")

        return f

    from anchorvoice.plugins.cpu_kernels import bf16_kernels

    bf16 = bf16_kernels()  # an AVX2-only CPU has no oneDNN bf16 convolutions: float32 only there
    if bf16:
        res["dec_bf16"] = time_alternately({"bfloat16": in_bf16(part_dec), "float32": part_dec}, repeats)
        model.dec.use_precision("bfloat16")
        with torch.inference_mode():
            res["bf16_agreement"] = audio_agreement(direct_out[0, 0], model.dec(zin, g=ge)[0, 0])
        model.dec.use_precision("float32")
    if official is not None:
        off = official_model(official, model)

        def off_decode() -> None:
            with torch.no_grad():
                off.decode(codes, phones, [refer], noise_scale=0.5)

        def off_dec() -> None:
            with torch.no_grad():
                off.dec(zin, g=ge)

        with torch.no_grad():
            res["max_abs_diff_dec_vs_official"] = float((off.dec(zin, g=ge) - direct_out).abs().max())
        sides = {"anchorvoice": decode, "official": off_decode, "anchorvoice dec": part_dec, "official dec": off_dec}
        if bf16:
            sides.update({"anchorvoice bf16": in_bf16(decode), "anchorvoice dec bf16": in_bf16(part_dec)})
        res["vs_official"] = time_alternately(sides, repeats)
    model.dec.channels_last = False
    ref = decode()
    res["ncw_reference"] = _time(decode, repeats)
    model.dec.channels_last = True
    res["max_abs_diff_vs_ncw"] = float((ours - ref).abs().max())
    res["audio_seconds"] = seconds
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--official", type=Path, default=None, help="GPT-SoVITS checkout's GPT_SoVITS folder")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = ap.parse_args()
    res = run(args.repeats, args.threads, args.official)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    a, r, secs = res["anchorvoice"], res["ncw_reference"], res["audio_seconds"]
    print(machine_line(args.threads))
    print(
        f"SoVITS v2 decode, full size ({res['params_m']:.1f} M params without enc_q, "
        f"dec {res['dec_params_m']:.1f} M), "
        f"10 s of audio, {res['threads']} threads, median of {res['repeats']}"
    )
    for name, m in (("anchorvoice", a), ("ncw reference", r)):
        print(
            f"  {name:14s} median {m['median_s']:.3f} s (min {m['min_s']:.3f}, cpu {m['cpu_median_s']:.3f})"
            f"  RTF {m['median_s'] / secs:.3f}"
        )
    for part, m in res["anchorvoice_parts"].items():
        print(f"    {part:11s} median {m['median_s']:.3f} s (min {m['min_s']:.3f})")
    c = res["chunked_dec"]
    print(
        f"  chunked dec (streaming_decode defaults) median {c['median_s']:.3f} s (min {c['min_s']:.3f}), "
        f"first audio after {res['first_chunk_s']:.3f} s"
    )
    print(
        f"  speed-up vs the official 2.47 s (BASELINE.md, other machine): "
        f"median x{OFFICIAL_DECODE_S / a['median_s']:.2f}, min x{OFFICIAL_DECODE_S / a['min_s']:.2f}"
    )
    print(
        f"  speed-up vs the ncw reference in this run: median x{r['median_s'] / a['median_s']:.2f}, "
        f"min x{r['min_s'] / a['min_s']:.2f}"
    )
    print(f"  max |audio difference| vs the ncw reference: {res['max_abs_diff_vs_ncw']:.2e}")
    d = res["dec_block_dft"]
    w, wo = d["with"], d["without"]
    print(
        f"  generator (dec) alone, alternating: block-DFT median {w['median_s']:.3f} s (min {w['min_s']:.3f}), "
        f"direct only {wo['median_s']:.3f} s (min {wo['min_s']:.3f}): x{wo['median_s'] / w['median_s']:.2f} "
        f"(min x{wo['min_s'] / w['min_s']:.2f}); max |diff| {res['max_abs_diff_dft_vs_direct']:.2e}; "
        f"spectra {res['block_dft_spectra_mb']:.0f} MB"
    )
    d = res["chunked_block_dft"]
    w, wo = d["with"], d["without"]
    print(
        f"  chunked dec, alternating: block-DFT median {w['median_s']:.3f} s (min {w['min_s']:.3f}), "
        f"direct only {wo['median_s']:.3f} s (min {wo['min_s']:.3f}): x{wo['median_s'] / w['median_s']:.2f}"
    )
    d = res.get("dec_bf16")
    if d is None:
        print("  bfloat16: not run (this CPU has no oneDNN bf16 kernels)")
    else:
        print(
            f"  generator (dec) bfloat16 vs float32, alternating: {d['bfloat16']['median_s']:.3f} s vs "
            f"{d['float32']['median_s']:.3f} s: x{d['float32']['median_s'] / d['bfloat16']['median_s']:.2f}; "
            f"agreement with float32 (random weights): {res['bf16_agreement']}"
        )
    if "vs_official" in res:
        v = res["vs_official"]
        print(
            f"  same run, alternating with the official code (max |dec difference| "
            f"{res['max_abs_diff_dec_vs_official']:.2e}):"
        )
        print(f"    {'':16s} {'median s':>9s} {'min s':>7s}")
        for name in v:
            print(f"    {name:16s} {v[name]['median_s']:9.3f} {v[name]['min_s']:7.3f}")
        for ours, theirs in (("anchorvoice", "official"), ("anchorvoice dec", "official dec"),
                             ("anchorvoice bf16", "official"), ("anchorvoice dec bf16", "official dec")):
            if ours not in v:
                continue
            o, t = v[ours], v[theirs]
            print(
                f"    speed-up {ours:16s} median x{t['median_s'] / o['median_s']:.2f}, "
                f"min x{t['min_s'] / o['min_s']:.2f}"
            )


if __name__ == "__main__":
    main()
