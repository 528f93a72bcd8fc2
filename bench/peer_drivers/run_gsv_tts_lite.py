"""gsv-tts-lite driver: TTS.infer_stream (token streaming), CPU, float32, no BERT.

gsv-tts-lite does not read the checkpoint's data.max_sec: its GPT stops at EOS or when its KV
cache (``gpt_cache`` = (batch, length) buckets, a constructor argument) is full. The cache is sized
to prompt + text + ``tokens`` so the GPT makes the same number of tokens as the others; the prompt
and text lengths come from the engine's own prompt cache and text frontend. The text is not cut
at punctuation (one GPT run per sentence, as for the others). Audio is 32 kHz float32.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from _common import emit, job, timed


def main() -> None:
    spec = job()
    import torch
    from gsv_tts import TTS
    from gsv_tts.TextProcessor import get_phones_and_bert

    torch.set_num_threads(spec["threads"])
    models = str(Path(spec["work"]) / "models")
    probe = TTS(models_dir=models, device="cpu", dtype="float32")
    probe.load_sovits_model(spec["sovits"])
    probe.cache_prompt_audio(spec["ref"], spec["ref_text"], "en")
    cached = probe.prompt_audio_cache[spec["ref"]]
    phones, *_ = get_phones_and_bert(spec["text"] + ".", probe.tts_config, "en")
    prefix = len(cached["phones1"]) + len(phones) + int(cached["prompt"].shape[-1])
    del probe
    tts = TTS(gpt_cache=[(1, prefix + spec["tokens"] - 1)], models_dir=models, device="cpu", dtype="float32")
    tts.load_gpt_model(spec["gpt"])
    tts.load_sovits_model(spec["sovits"])

    def speak():
        for clip in tts.infer_stream(spec["ref"], spec["ref"], spec["ref_text"], spec["text"], text_language="en",
                                     prompt_language="en", is_cut_text=False, debug=False):
            yield clip.audio_data

    result = timed(spec, speak, tts.samplerate)
    result["tokens"] = spec["tokens"]
    result["tokens_note"] = f"KV cache sized to prompt+text ({prefix}) + tokens, reached unless EOS came first"
    result["version"] = version("gsv-tts-lite")
    emit(result)


if __name__ == "__main__":
    main()
