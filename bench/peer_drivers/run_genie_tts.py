"""genie-tts driver (ONNX Runtime): converts the .ckpt/.pth with its own converter, then times tts_async.

genie-tts synthesises a sentence whole (no streaming within a sentence), so first audio is the time
to the first chunk its async API yields. Its audio is 32 kHz int16 PCM bytes; its decode loop stops
at EOS or after 500 steps (it does not read the checkpoint's data.max_sec).
"""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import version
from pathlib import Path

import numpy as np
from _common import emit, job, timed

TOKEN_SAMPLES = 1280  # one semantic token = 2 SoVITS frames of 640 samples at 32 kHz


def limit_ort_threads(threads: int) -> None:
    """genie-tts has no thread setting: its sessions take ``onnxruntime.SessionOptions()``, so the
    class is replaced by one whose intra-op pool has ``threads`` threads (inter-op 1), as
    torch.set_num_threads does for the torch engines. Nothing else of genie-tts changes."""
    import onnxruntime as ort

    base = ort.SessionOptions

    class Options(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.intra_op_num_threads = threads
            self.inter_op_num_threads = 1

    ort.SessionOptions = Options


def main() -> None:
    spec = job()
    limit_ort_threads(spec["threads"])
    import genie_tts as genie  # after job(): reads GENIE_DATA_DIR at import

    onnx_dir = Path(spec["work"]) / "onnx"
    if not (onnx_dir / "vits_fp32.onnx").exists():
        genie.convert_to_onnx(spec["gpt"], spec["sovits"], str(onnx_dir))
    genie.load_character("bench", str(onnx_dir), "English")
    genie.set_reference_audio("bench", spec["ref"], spec["ref_text"], "English")

    def speak():
        loop = asyncio.new_event_loop()
        agen = genie.tts_async("bench", spec["text"], split_sentence=False)
        try:
            while True:
                try:
                    chunk = loop.run_until_complete(agen.__anext__())
                except StopAsyncIteration:
                    break
                yield np.frombuffer(chunk, dtype=np.int16)
        finally:
            loop.close()

    result = timed(spec, speak, 32000)
    result["tokens"] = round(result["audio_s"] * 32000 / TOKEN_SAMPLES)
    result["tokens_note"] = "from audio length (1280 samples/token); it ignores data.max_sec (EOS or 500 steps)"
    result["version"] = version("genie-tts")
    result["threads_note"] = (f"ONNX Runtime intra-op threads {spec['threads']} (SessionOptions default replaced), "
                              f"process pinned to {len(os.sched_getaffinity(0))} CPUs")
    emit(result)


if __name__ == "__main__":
    main()
