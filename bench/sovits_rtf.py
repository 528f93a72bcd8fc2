"""SoVITS v2 decode speed on CPU: full-size random weights, the BASELINE.md workload.

Usage: ``.venv/bin/python bench/sovits_rtf.py [--repeats 5] [--threads 2] [--json]``

Workload (gsv_reference/BASELINE.md, "SoVITS v2 decode"): a generator built from the official
``configs/s2.json`` sizes (51.3 M parameters, HiFi-GAN decoder 14.7 M) with random weights, 250
semantic codes (10 s), 120 phones, a 5 s reference spectrogram, noise_scale 0.5, ``torch`` on 2
threads, float32, inference mode. Each figure is the median (and minimum) of ``--repeats`` runs after
one warm-up; wall and CPU seconds are both printed because this machine is shared (the CPU figure
counts only this process's work, the wall figure also time spent waiting for a core).

Compared:

* ``anchorvoice``: :class:`plugins.gsv.sovits.SynthesizerTrn` as shipped (weight norm folded at
  load, decoder convs on the channels-last layout, shared activations, in-place adds);
* ``ncw reference``: the same weights with the decoder on plain conv1d (NCW) in the official order
  of operations, i.e. what the official Generator computes, measured here in the same run;
* the official figure 2.47 s from BASELINE.md (measured on another machine: a 2-core AMD EPYC);
* the decoder streamed through :class:`plugins.gsv.streaming_decode.ChunkedDecoder` (total time and
  time to the first audio chunk).

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


def run(repeats: int, threads: int) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(REPO))
    from plugins.gsv.sovits import SovitsConfig, SynthesizerTrn, official_v2_config
    from plugins.gsv.spectrogram import linear_spectrogram

    torch.set_num_threads(threads)
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
    from plugins.gsv.streaming_decode import ChunkedDecoder

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
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = ap.parse_args()
    res = run(args.repeats, args.threads)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    a, r, secs = res["anchorvoice"], res["ncw_reference"], res["audio_seconds"]
    print(f"SoVITS v2 decode, full size ({res['params_m']:.1f} M params without enc_q, "
          f"dec {res['dec_params_m']:.1f} M), "
          f"10 s of audio, {res['threads']} threads, median of {res['repeats']}")
    for name, m in (("anchorvoice", a), ("ncw reference", r)):
        print(f"  {name:14s} median {m['median_s']:.3f} s (min {m['min_s']:.3f}, cpu {m['cpu_median_s']:.3f})"
              f"  RTF {m['median_s'] / secs:.3f}")
    for part, m in res["anchorvoice_parts"].items():
        print(f"    {part:11s} median {m['median_s']:.3f} s (min {m['min_s']:.3f})")
    c = res["chunked_dec"]
    print(f"  chunked dec (streaming_decode defaults) median {c['median_s']:.3f} s (min {c['min_s']:.3f}), "
          f"first audio after {res['first_chunk_s']:.3f} s")
    print(f"  speed-up vs the official 2.47 s (BASELINE.md, other machine): "
          f"median x{OFFICIAL_DECODE_S / a['median_s']:.2f}, min x{OFFICIAL_DECODE_S / a['min_s']:.2f}")
    print(f"  speed-up vs the ncw reference in this run: median x{r['median_s'] / a['median_s']:.2f}, "
          f"min x{r['min_s'] / a['min_s']:.2f}")
    print(f"  max |audio difference| vs the ncw reference: {res['max_abs_diff_vs_ncw']:.2e}")


if __name__ == "__main__":
    main()
