"""gpt-sovits-cpufast driver: its TTS_infer_pack.TTS in streaming mode (the official api_v2 interface).

The text is not split (text_split_method "cut0") so that one GPT run covers the sentence, as for
the other engines; the GPT stops at EOS or at the checkpoint's data.max_sec * 50 tokens, as the
official code does. Audio is 32 kHz int16.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

from _common import emit, job, timed


def main() -> None:
    spec = job()
    os.environ["GPT_SOVITS_DATA_DIR"] = spec["work"]
    from gpt_sovits_cpufast.runtime import configure_runtime

    configure_runtime()  # puts the package's code folders on sys.path, as its launchers do
    import torch
    from TTS_infer_pack.TTS import TTS, TTS_Config

    torch.set_num_threads(spec["threads"])
    cfg = TTS_Config({"custom": {
        "device": "cpu", "is_half": False, "version": "v2", "t2s_weights_path": spec["gpt"],
        "vits_weights_path": spec["sovits"], "cnhuhbert_base_path": spec["hubert"],
        "bert_base_path": str(Path(spec["work"]) / "chinese-roberta-wwm-ext-large"),
    }})
    tts = TTS(cfg)
    inputs = {"text": spec["text"], "text_lang": "en", "ref_audio_path": spec["ref"], "prompt_text": spec["ref_text"],
              "prompt_lang": "en", "text_split_method": "cut0", "streaming_mode": True, "parallel_infer": False,
              "seed": 0}

    def speak():
        for _sr, chunk in tts.run(inputs):
            yield chunk

    result = timed(spec, speak, 32000)
    result["tokens"] = tts.configs.hz * tts.configs.max_sec
    result["tokens_note"] = "the data.max_sec cap (hz 50 * max_sec), reached unless EOS came first"
    result["version"] = version("gpt-sovits-cpufast")
    emit(result)


if __name__ == "__main__":
    main()
